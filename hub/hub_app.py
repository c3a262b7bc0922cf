"""The hub process of `learnhub run`: JupyterHub, stopping once and without a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess

from jupyterhub.app import JupyterHub

from . import upstream
from .stopping import skip_exit_collection

# How a managed service is stopped: SIGINT and seconds to wait, then SIGTERM (which ends
# LearnHub's services at once when they are already stopping, learnhub.stopping).
# JupyterHub's own stop follows, with its 30 s steps, for a service still running.
SERVICE_STOP = ((signal.SIGINT, 4.0), (signal.SIGTERM, 1.0))


class LearnHubApp(JupyterHub):
    """JupyterHub whose shutdown happens once, quickly, with no health check racing it.

    JupyterHub.shutdown_cancel_tasks runs again for every SIGINT or SIGTERM, each time
    cleaning up the same services; its cleanup stops the managed services one after the
    other; and its periodic check_services_health goes on meanwhile, reading the server row
    that Service.stop has just deleted (AttributeError: 'NoneType' object has no attribute
    'proto'). Here a later signal finds the shutdown started, the periodic checks stop (one
    under way is cancelled) before the cleanup, and the services, which do not depend on
    each other, stop together.
    """

    _stopping = False
    _health_check: asyncio.Future | None = None

    async def shutdown_cancel_tasks(self, sig=None):
        if self._stopping:
            self.log.info("Already stopping (%s)", sig.name if sig else "stop requested again")
            return
        self._stopping = True
        for callback in upstream.periodic_callbacks(self):
            callback.stop()
        check = self._health_check
        if check is not None:
            check.cancel()
            await asyncio.wait([check])
        await super().shutdown_cancel_tasks(sig)

    async def cleanup(self):
        managed = [service for service in upstream.services(self) if service.managed]
        if managed:
            self.log.info("Stopping %i services", len(managed))
            stopped = await asyncio.gather(
                *(self._stop_service(service) for service in managed), return_exceptions=True
            )
            for service, outcome in zip(managed, stopped, strict=True):
                if isinstance(outcome, Exception):
                    self.log.error("Could not stop service %s: %s", service.name, outcome)
        # JupyterHub's cleanup then finds them stopped (Service.stop returns at once).
        await super().cleanup()

    async def _stop_service(self, service) -> None:
        """SIGINT, then SIGTERM, waiting on the process itself: the spawner's own stop polls
        at growing intervals (a service gone in 2 s is noticed after 3 to 6 s)."""
        spawner = service.spawner
        proc = getattr(spawner, "proc", None)
        if proc is not None:
            # Or the spawner's poll would see the exit and start the service again.
            spawner.stop_polling()
            for signum, timeout in SERVICE_STOP:
                if proc.poll() is not None:
                    break
                proc.send_signal(signum)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, timeout)
        await service.stop()

    async def check_services_health(self):
        if self._stopping:
            return
        check = self._health_check = asyncio.ensure_future(super().check_services_health())
        try:
            # Returns, rather than raising, when the shutdown cancels the check.
            await asyncio.wait([check])
        finally:
            self._health_check = None
        if not check.cancelled():
            check.result()


def main(argv: list[str] | None = None) -> None:
    LearnHubApp.launch_instance(argv)
    skip_exit_collection()


if __name__ == "__main__":
    main()
