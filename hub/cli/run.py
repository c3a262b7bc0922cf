"""`learnhub run|init|doctor`: start the hub (and a demo LMS), make its state, check the setup."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from .. import HUB_CONFIG
from ..config import find_proxy_command
from ..db import upgrade_at_start
from ..engine_findings import doctor_engine_findings
from ..privacy.policy import policy_findings
from ..privacy.tls import tls_findings
from ..run_processes import RunProcesses
from ..settings import Settings, SettingsError, init_state
from ..spawners import learner_server_findings
from ..stopping import skip_exit_collection
from ..store import Store

DEMO_CONSUMER_KEY = "learnhub-demo"
DEMO_CLIENT_ID = "learnhub-demo"
DEMO_DEPLOYMENT_ID = "demo-deployment"
# Read by the course service (see courses.service) when courses.template is not set.
DEMO_TEMPLATE_ENV = "LEARNHUB_DEMO_COURSE_TEMPLATE"
# The source checkout of an editable install (its assignments/ are the demo course); in a
# wheel's install this folder has none.
CHECKOUT = Path(__file__).resolve().parents[2]


def _store(settings: Settings) -> Store:
    return Store(settings.database_url, settings.crypt_key)


def hub_config_file() -> Path:
    """The JupyterHub configuration file the hub runs: the package's, unless
    $LEARNHUB_HUB_CONFIG names another."""
    return Path(os.environ.get("LEARNHUB_HUB_CONFIG") or HUB_CONFIG)


def doctor_findings(settings: Settings) -> list[tuple[str, str]]:
    """(level, message) pairs about this installation; level is ok, warning or error."""
    findings = [("ok", f"settings: {settings.source or 'defaults'}; state in {settings.state_dir}")]
    proxy = find_proxy_command(settings["proxy"]["command"])
    if Path(proxy).exists() or any(
        (Path(d) / proxy).exists() for d in os.environ.get("PATH", "").split(os.pathsep)
    ):
        findings.append(("ok", f"proxy: {proxy}"))
    else:
        findings.append(
            (
                "error",
                "configurable-http-proxy not found: run `npm install -g "
                "configurable-http-proxy` or set proxy.command",
            )
        )
    findings.extend(learner_server_findings(settings))
    findings.extend(doctor_engine_findings(settings))
    findings.extend(tls_findings(settings.values))
    findings.extend(policy_findings(settings.values))
    try:
        store = _store(settings)
    except SettingsError as e:
        findings.append(("error", str(e)))
        return findings
    count = len(store.list_consumers()) + len(store.list_platforms())
    level = "ok" if count else "warning"
    findings.append((level, f"LTI registrations: {count} (add with `learnhub lti ...`)"))
    return findings


def cmd_doctor(settings: Settings, args) -> int:
    findings = doctor_findings(settings)
    for level, message in findings:
        print(f"[{level}] {message}")
    return 1 if any(level == "error" for level, _ in findings) else 0


def ensure_demo_registrations(settings: Settings, lms_url: str) -> str:
    """Register the demo LMS as an LTI 1.1 consumer and an LTI 1.3 platform; return the secret."""
    store = _store(settings)
    consumer = store.get_consumer(DEMO_CONSUMER_KEY)
    if consumer is None:
        store.add_consumer(DEMO_CONSUMER_KEY, secrets.token_urlsafe(32), lms_url)
        consumer = store.get_consumer(DEMO_CONSUMER_KEY)
    if not store.find_platforms(lms_url, DEMO_CLIENT_ID):
        store.add_platform(
            issuer=lms_url,
            client_id=DEMO_CLIENT_ID,
            deployment_ids=[DEMO_DEPLOYMENT_ID],
            auth_url=f"{lms_url}/auth",
            jwks_url=f"{lms_url}/jwks",
            token_url=f"{lms_url}/token",
            frame_origin=lms_url,
        )
    return consumer.secret


def cmd_init(settings: Settings, args) -> int:
    made = init_state(settings)
    for path in made:
        print(f"made {path}")
    print(f"LearnHub state directory: {settings.state_dir}" + ("" if made else " (kept as it is)"))
    return 0


def cmd_run(settings: Settings, args) -> int:
    init_state(settings)
    # Before the demo registrations are written; the hub's start checks again (gather_facts).
    upgrade_at_start(settings.database_url)
    # The hub reads the same settings and state directory, whatever its working directory.
    env = {**os.environ, "LEARNHUB_STATE_DIR": str(settings.state_dir)}
    if settings.source:
        env["LEARNHUB_CONFIG"] = str(settings.source.resolve())
    run = RunProcesses()
    if args.demo:
        lms_url = f"http://127.0.0.1:{settings['demo']['lms_port']}"
        secret = ensure_demo_registrations(settings, lms_url)
        env_lms = {**env, "LEARNHUB_DEMO_LMS_SECRET": secret}
        # The demo course is the repository's PY4E course, unless settings name another.
        demo_course = CHECKOUT / "assignments"
        if settings["courses"]["template"] is None and (demo_course / "source").is_dir():
            env[DEMO_TEMPLATE_ENV] = str(demo_course)
        run.start(
            [
                sys.executable,
                "-m",
                "learnhub.demo.lms",
                "--port",
                str(settings["demo"]["lms_port"]),
                "--tool-url",
                settings.public_url,
                "--consumer-key",
                DEMO_CONSUMER_KEY,
                "--client-id",
                DEMO_CLIENT_ID,
                "--deployment-id",
                DEMO_DEPLOYMENT_ID,
            ],
            env=env_lms,
        )
        print(
            f"\nLearnHub is starting at {settings.public_url}\n"
            f"Try a launch: open {lms_url}/course and press 'Launch as learner' "
            "(LTI 1.1 or 1.3).\n"
            "As instructor, open Course > Formgrader in JupyterLab to release the PY4E "
            "assignments.\n"
            f"Staff log in at {settings.public_url}/hub/login (sign up as 'admin' first).\n",
            flush=True,
        )
    # JupyterHub, stopping once and without racing its own health checks (hub_app).
    hub = run.start(
        [sys.executable, "-m", "learnhub.hub_app", "-f", str(hub_config_file())],
        env=env,
        cwd=settings.state_dir,
    )
    code = run.wait_for(hub)
    run.stop_the_rest(settings.state_dir / "proxy.pid")
    skip_exit_collection()
    return code if code >= 0 else 128 - code


def add_commands(subparsers) -> None:
    """Add `run`, `init` and `doctor` to the `learnhub` command's subparsers."""
    run = subparsers.add_parser("run", help="start the hub (and the demo LMS with --demo)")
    run.add_argument("--demo", action="store_true", help="also start a demo LMS with a demo course")
    run.set_defaults(func=cmd_run)

    init = subparsers.add_parser(
        "init",
        help="make the state directory and its keys (kept when they exist); run does it too",
    )
    init.set_defaults(func=cmd_init)

    doctor = subparsers.add_parser("doctor", help="check the installation and say what would run")
    doctor.set_defaults(func=cmd_doctor)
