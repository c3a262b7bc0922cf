"""`learnhub lti ...`: LTI 1.1 consumers, LTI 1.3 platforms and the tool's signing keys."""

from __future__ import annotations

import getpass
import secrets
import socket
import sys
import time
from urllib.parse import urlencode, urlsplit

from ..lti13.keys import ToolKeys
from ..lti13.registration import KEY_ARGUMENT, REGISTER_PATH
from ..settings import Settings
from ..store import Store

# A registration URL is meant for the next minutes, not to lie around for days.
MAX_REGISTRATION_MINUTES = 24 * 60


def _store(settings: Settings) -> Store:
    return Store(settings.database_url, settings.crypt_key)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SystemExit(f"error: {url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}"


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
        print(f"May frame LearnHub: {frame_origin} (from its next launch)")
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
    print(f"May frame LearnHub: {frame_origin} (from its next launch)")
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


def cmd_registration_url(settings: Settings, args) -> int:
    if not 1 <= args.lifetime <= MAX_REGISTRATION_MINUTES:
        print(f"error: --lifetime must be 1 to {MAX_REGISTRATION_MINUTES} minutes", file=sys.stderr)
        return 1
    secret = secrets.token_urlsafe(32)
    made_by = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
    expires = _store(settings).add_registration_key(
        secret, made_by=made_by, lifetime=args.lifetime * 60
    )
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
    print(f"Registration URL for one LMS, usable once until {until}:")
    print(f"{settings.public_url}/hub/{REGISTER_PATH}?{urlencode({KEY_ARGUMENT: secret})}")
    print(
        "Paste it into the LMS's tool registration by URL (Moodle: Manage tools; Canvas: "
        "Developer Keys > LTI Registration). Keep it private until then."
    )
    return 0


def cmd_rotate_key(settings: Settings, args) -> int:
    kid = ToolKeys(_store(settings)).rotate()
    print(f"New tool signing key {kid}; the previous key stays published for 7 days.")
    return 0


def add_commands(subparsers) -> None:
    """Add `lti` to the `learnhub` command's subparsers."""
    lti = subparsers.add_parser("lti", help="manage LTI 1.1 consumers and LTI 1.3 platforms")
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

    p = lti_commands.add_parser(
        "registration-url",
        help="print a one-time URL an LMS administrator pastes into the LMS to register "
        "LearnHub as an LTI 1.3 tool (LTI Dynamic Registration)",
    )
    p.add_argument(
        "--lifetime",
        type=int,
        default=60,
        metavar="MINUTES",
        help=f"minutes the URL stays usable (default 60, at most {MAX_REGISTRATION_MINUTES})",
    )
    p.add_argument(
        "--by",
        help="who the registration page says made the URL (default: user@host of this command)",
    )
    p.set_defaults(func=cmd_registration_url)

    p = lti_commands.add_parser("rotate-key", help="make a new tool signing key (JWKS)")
    p.set_defaults(func=cmd_rotate_key)
