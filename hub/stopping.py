"""How LearnHub's long-running processes stop: at SIGINT or SIGTERM, promptly and cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def stop_signal(name: str, log: logging.Logger | None = None) -> signal.Signals:
    """Wait for SIGINT or SIGTERM; the signal that came.

    JupyterHub stops a managed service with SIGINT, and with SIGTERM only after its
    spawner's 30 s interrupt timeout. Python turns SIGINT into KeyboardInterrupt (a
    traceback from wherever the service was) only where SIGINT was not ignored when it
    started, and a command started in the background of a script (`make run &`) inherits
    it ignored: the service then sat out the whole timeout. So both signals are caught
    here, whatever the process inherited. Once stopping, another SIGINT is ignored and
    another SIGTERM ends the process at once (the hub giving up on a graceful stop).
    """
    loop = asyncio.get_running_loop()
    came: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(signum: signal.Signals) -> None:
        if came.done():
            return
        if log is not None:
            log.info("%s: %s received, stopping", name, signum.name)
        came.set_result(signum)
        # Back to the default action: a second SIGTERM ends the process.
        loop.remove_signal_handler(signal.SIGTERM)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    return await came


def skip_exit_collection() -> None:
    """Call last, once everything is stopped and closed: the process then ends without the
    garbage collection of every object it made, which the interpreter runs at exit (a
    second for JupyterHub's, nbgrader's and SQLAlchemy's modules on a busy machine, and
    each stop of `learnhub run` waited for its services, the hub and itself in turn).
    Exit handlers still run."""
    gc.freeze()
