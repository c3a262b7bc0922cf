"""The `learnhub` command: run the hub, manage LTI registrations and keys, check the setup."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import images, passback
from .config import find_proxy_command
from .grading import cli as grading_cli
from .privacy import analytics, breach, report, retention
from .privacy.policy import policy_findings
from .privacy.tls import tls_findings
from .run_processes import RunProcesses
from .settings import Settings, SettingsError, init_state, load_settings
from .spawners import learner_server_findings
from .stopping import skip_exit_collection
from .store import Store

DEMO_CONSUMER_KEY = "learnhub-demo"
DEMO_CLIENT_ID = "learnhub-demo"
DEMO_DEPLOYMENT_ID = "demo-deployment"
# Read by the course service (see courses.service) when courses.template is not set.
DEMO_TEMPLATE_ENV = "LEARNHUB_DEMO_COURSE_TEMPLATE"


def _store(settings: Settings) -> Store:
    return Store(settings.database_url, settings.crypt_key)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SystemExit(f"error: {url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


def hub_config_file() -> Path:
    """The project's jupyterhub_config.py (beside the package in a checkout or an image)."""
    explicit = os.environ.get("LEARNHUB_HUB_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parent.parent / "jupyterhub_config.py"


# learnhub lti ...


def cmd_add_consumer(settings: Settings, args) -> int:
    secret = args.secret or secrets.token_urlsafe(32)
    frame_origin = _origin(args.frame_origin) if args.frame_origin else None
    store = _store(settings)
    try:
        store.add_consumer(args.key, secret, frame_origin)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Added LTI 1.1 consumer {args.key}.")
    print(f"Launch URL: {settings.public_url}/hub/lti11/launch")
    if frame_origin:
        print(f"May frame LearnHub: {frame_origin} (restart the hub to apply)")
    print("Shared secret (give it to the LMS administrator; it is not shown again):")
    print(secret)
    return 0


def cmd_list_consumers(settings: Settings, args) -> int:
    consumers = _store(settings).list_consumers()
    if not consumers:
        print("No LTI 1.1 consumers.")
    for consumer in consumers:
        created = time.strftime("%Y-%m-%d", time.gmtime(consumer.created))
        print(f"{consumer.key}\tframe-origin={consumer.frame_origin or '-'}\tcreated={created}")
    return 0


def cmd_remove_consumer(settings: Settings, args) -> int:
    if not _store(settings).remove_consumer(args.key):
        print(f"error: no consumer with key {args.key!r}", file=sys.stderr)
        return 1
    print(f"Removed LTI 1.1 consumer {args.key}.")
    return 0


def cmd_add_platform(settings: Settings, args) -> int:
    for url in (args.auth_url, args.jwks_url, args.token_url):
        _origin(url)
    frame_origin = _origin(args.frame_origin or args.auth_url)
    try:
        platform = _store(settings).add_platform(
            issuer=args.issuer,
            client_id=args.client_id,
            deployment_ids=args.deployment_id,
            auth_url=args.auth_url,
            jwks_url=args.jwks_url,
            token_url=args.token_url,
            frame_origin=frame_origin,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Added LTI 1.3 platform {platform.id}: {args.issuer} (client id {args.client_id})")
    print(f"Deployments: {', '.join(sorted(set(args.deployment_id)))}")
    print(f"May frame LearnHub: {frame_origin} (restart the hub to apply)")
    print(f"Tool registration for the LMS: {settings.public_url}/hub/lti13/config")
    return 0


def cmd_list_platforms(settings: Settings, args) -> int:
    platforms = _store(settings).list_platforms()
    if not platforms:
        print("No LTI 1.3 platforms.")
    for p in platforms:
        print(
            f"{p.id}\tissuer={p.issuer}\tclient_id={p.client_id}\t"
            f"deployments={','.join(p.deployment_ids)}\tframe-origin={p.frame_origin or '-'}"
        )
    return 0


def cmd_remove_platform(settings: Settings, args) -> int:
    if not _store(settings).remove_platform(args.id):
        print(f"error: no platform with id {args.id}", file=sys.stderr)
        return 1
    print(f"Removed LTI 1.3 platform {args.id}.")
    return 0


def cmd_add_deployment(settings: Settings, args) -> int:
    store = _store(settings)
    if store.get_platform(args.id) is None:
        print(f"error: no platform with id {args.id}", file=sys.stderr)
        return 1
    store.add_deployment(args.id, args.deployment_id)
    print(f"Platform {args.id} may now launch with deployment {args.deployment_id}.")
    return 0


def cmd_rotate_key(settings: Settings, args) -> int:
    from .lti13.keys import ToolKeys

    kid = ToolKeys(_store(settings)).rotate()
    print(f"New tool signing key {kid}; the previous key stays published for 7 days.")
    return 0


# learnhub doctor / run


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
        demo_course = hub_config_file().parent / "assignments"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnhub",
        description="LearnHub: a privacy-first learning platform on JupyterHub. Settings come "
        "from learnhub.yaml (or $LEARNHUB_CONFIG); state lives in $LEARNHUB_STATE_DIR "
        "(default ./learnhub-state).",
    )
    parser.add_argument(
        "--config", help="settings file (default: $LEARNHUB_CONFIG or ./learnhub.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start the hub (and the demo LMS with --demo)")
    run.add_argument("--demo", action="store_true", help="also start a demo LMS with a demo course")
    run.set_defaults(func=cmd_run)

    init = commands.add_parser(
        "init",
        help="make the state directory and its keys (kept when they exist); run does it too",
    )
    init.set_defaults(func=cmd_init)

    doctor = commands.add_parser("doctor", help="check the installation and say what would run")
    doctor.set_defaults(func=cmd_doctor)

    lti = commands.add_parser("lti", help="manage LTI 1.1 consumers and LTI 1.3 platforms")
    lti_commands = lti.add_subparsers(dest="lti_command", required=True, metavar="ACTION")

    p = lti_commands.add_parser(
        "add-consumer", help="add an LTI 1.1 consumer key; prints its secret last"
    )
    p.add_argument("key")
    p.add_argument(
        "--secret",
        help="use this shared secret instead of a generated one "
        "(write --secret=VALUE when it begins with '-')",
    )
    p.add_argument("--frame-origin", help="origin of the LMS pages that frame LearnHub")
    p.set_defaults(func=cmd_add_consumer)

    p = lti_commands.add_parser("list-consumers", help="list LTI 1.1 consumer keys")
    p.set_defaults(func=cmd_list_consumers)

    p = lti_commands.add_parser("remove-consumer", help="remove an LTI 1.1 consumer key")
    p.add_argument("key")
    p.set_defaults(func=cmd_remove_consumer)

    p = lti_commands.add_parser("add-platform", help="register an LTI 1.3 platform")
    p.add_argument(
        "--issuer", required=True, help="the platform's iss, e.g. https://canvas.instructure.com"
    )
    p.add_argument("--client-id", required=True, help="the client id the platform gave LearnHub")
    p.add_argument(
        "--deployment-id",
        required=True,
        action="append",
        help="a deployment id (repeat for several)",
    )
    p.add_argument("--auth-url", required=True, help="the platform's OIDC authorization URL")
    p.add_argument("--jwks-url", required=True, help="the platform's public key set URL")
    p.add_argument("--token-url", required=True, help="the platform's OAuth2 token URL")
    p.add_argument(
        "--frame-origin",
        help="origin of the LMS pages that frame LearnHub (default: the auth URL's origin)",
    )
    p.set_defaults(func=cmd_add_platform)

    p = lti_commands.add_parser("list-platforms", help="list LTI 1.3 platforms")
    p.set_defaults(func=cmd_list_platforms)

    p = lti_commands.add_parser("remove-platform", help="remove an LTI 1.3 platform by id")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_remove_platform)

    p = lti_commands.add_parser("add-deployment", help="add a deployment id to a platform")
    p.add_argument("id", type=int)
    p.add_argument("deployment_id")
    p.set_defaults(func=cmd_add_deployment)

    p = lti_commands.add_parser("rotate-key", help="make a new tool signing key (JWKS)")
    p.set_defaults(func=cmd_rotate_key)

    images.add_commands(commands)
    breach.add_commands(commands)
    analytics.add_commands(commands)
    passback.add_commands(commands)
    grading_cli.add_commands(commands)
    retention.add_commands(commands)
    report.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 2
    try:
        return args.func(settings, args)
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
