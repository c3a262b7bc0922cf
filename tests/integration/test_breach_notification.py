"""`notify-breach` against a real hub database and a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper
from nativeauthenticator.orm import UserInfo
from traitlets.config import Config

from learnhub.auth import auth_state_key
from tests.support import free_port, self_signed_certificate

pytestmark = pytest.mark.integration

CRYPT_KEY = bytes(range(32, 64))
FROM = "privacy@learnhub.test"
SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-for-the-test"
COURSE = "c3kq7ab2xyzd"
OTHER_COURSE = "c9zz7ab2xyzd"

INCIDENT = {
    "title": "Learner names and emails exposed by a misconfigured backup",
    "occurred": "between 2026-05-20 and 2026-05-28",
    "discovered": "2026-05-28",
    "data_affected": ["names", "email addresses"],
    "what_happened": "A nightly backup of the hub database was copied to a storage bucket "
    "that could be read without a password for eight days.",
    "what_we_are_doing": "We removed the copy, rotated every key it held and now check "
    "backup permissions every night.",
    "what_you_can_do": "You need not do anything; be wary of emails asking for passwords.",
}

# username -> (auth_state or None, groups, staff email)
PEOPLE = {
    "lada0000000000000000": (
        {"name": "Ada Lovelace", "email": "ada@example.org", "platform": "p"},
        [f"{COURSE}-learner"],
        None,
    ),
    "lbob0000000000000000": (
        {"name": "Bob Byte", "email": "bob@example.org", "platform": "p"},
        [f"{COURSE}-learner", f"{OTHER_COURSE}-learner"],
        None,
    ),
    "lcyd0000000000000000": ({"name": "Cyd NoMail", "platform": "p"}, [f"{COURSE}-learner"], None),
    "ldee0000000000000000": (
        {"name": "Dee Elsewhere", "email": "dee@example.org", "platform": "p"},
        [f"{OTHER_COURSE}-learner"],
        None,
    ),
    "teacher": (None, [f"{COURSE}-instructor"], "teacher@example.edu"),
}


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts and refuses some recipients."""

    refuse: set[str] = field(default_factory=set)
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (SMTP_USER, SMTP_PASSWORD)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    def by_recipient(self) -> dict[str, EmailMessage]:
        return {rcpt: msg for _, rcpts, msg in self.messages for rcpt in rcpts}


@pytest.fixture
def mailbox():
    return Mailbox()


@pytest.fixture
def smtp_server(mailbox):
    """A plain SMTP server on 127.0.0.1 (security: none is allowed only for loopback)."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def tls_smtp_server(mailbox, tmp_path):
    """Start an SMTP server that requires TLS (starttls or tls) and a login.

    Its certificate is self-signed, so the client trusts it only through smtp.ca_file.
    """
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controllers = []

    def start(security: str = "starttls") -> tuple[int, Path]:
        port = free_port()
        if security == "starttls":
            tls = {"tls_context": context, "require_starttls": True}
        else:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here the socket is TLS already.
            tls = {"ssl_context": context, "auth_require_tls": False}
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=mailbox.authenticate,
            auth_required=True,
            **tls,
        )
        controller.start()
        controllers.append(controller)
        return port, cert

    yield start
    for controller in controllers:
        controller.stop()


async def _fill_hub_database(url: str) -> None:
    """Users, groups and encrypted auth state, written by JupyterHub's own ORM and crypto."""
    db = orm.new_session_factory(url)()
    keeper = CryptKeeper(config=Config(), keys=[auth_state_key(CRYPT_KEY)])
    try:
        groups: dict[str, orm.Group] = {}
        for i, (username, (state, group_names, staff_email)) in enumerate(PEOPLE.items()):
            user = orm.User(name=username, last_activity=dt.datetime(2026, 5, 1 + i))
            if state is not None:
                user.encrypted_auth_state = await keeper.encrypt(state)
            for group_name in group_names:
                if group_name not in groups:
                    groups[group_name] = orm.Group(name=group_name)
                    db.add(groups[group_name])
                user.groups.append(groups[group_name])
            db.add(user)
            if staff_email:
                db.add(UserInfo(username=username, password=b"x", email=staff_email))
        # Signed up for direct login, never logged in: only in users_info.
        db.add(UserInfo(username="newstaff", password=b"x", email="newstaff@example.edu"))
        db.commit()
    finally:
        db.close()
        db.get_bind().dispose()
        keeper.executor.shutdown()


@dataclass
class Site:
    """A LearnHub state directory with a hub database, settings and an incident file."""

    state_dir: Path
    config_file: Path
    incident_file: Path
    report_file: Path
    env: dict[str, str]

    def configure(self, **smtp) -> None:
        settings = {
            "smtp": {"from_address": FROM, "rate_per_minute": 6000, "timeout": 10, **smtp},
            "operator": {
                "name": "LearnHub Test Site",
                "contact_email": "questions@learnhub.test",
                "postal_address": "2190 Aurelius Rd. Unit 175\nHolt MI 48842-9998",
            },
        }
        self.config_file.write_text(yaml.safe_dump(settings))

    def notify(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "learnhub.cli",
                "notify-breach",
                "--incident",
                str(self.incident_file),
                "--report",
                str(self.report_file),
                *args,
            ],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Shown by pytest when the test fails.
        print(f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc

    def report(self) -> dict:
        return json.loads(self.report_file.read_text())


@pytest.fixture
def site(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    asyncio.run(_fill_hub_database(f"sqlite:///{state_dir / 'learnhub.sqlite'}"))
    incident_file = tmp_path / "incident.yaml"
    incident_file.write_text(yaml.safe_dump(INCIDENT))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEARNHUB_", "JUPYTERHUB_"))}
    site = Site(
        state_dir=state_dir,
        config_file=tmp_path / "learnhub.yaml",
        incident_file=incident_file,
        report_file=tmp_path / "report.json",
        env={
            **env,
            "LEARNHUB_STATE_DIR": str(state_dir),
            "LEARNHUB_CONFIG": str(tmp_path / "learnhub.yaml"),
            "LEARNHUB_CRYPT_KEY": CRYPT_KEY.hex(),
        },
    )
    return site


def assert_notice(message: EmailMessage, greeting: str) -> None:
    body = message.get_content().replace("\r\n", "\n")  # as it came over the wire
    assert message["From"] == f"LearnHub Test Site <{FROM}>"
    assert message["Subject"] == (
        f"Notice of a data breach at LearnHub Test Site: {INCIDENT['title']}"
    )
    assert message["Reply-To"] == "questions@learnhub.test"
    assert body.startswith(f"{greeting}\n")
    assert INCIDENT["what_happened"] in " ".join(body.split())
    assert INCIDENT["what_we_are_doing"] in " ".join(body.split())
    assert INCIDENT["what_you_can_do"] in body
    assert "- names\n- email addresses" in body
    assert "questions@learnhub.test" in body
    assert "Holt MI 48842-9998" in body


def test_every_affected_user_with_an_address_is_emailed(site, smtp_server, mailbox):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    proc = site.notify("--affected", "all")
    assert proc.returncode == 0
    delivered = mailbox.by_recipient()
    assert sorted(delivered) == [
        "ada@example.org",
        "bob@example.org",
        "dee@example.org",
        "newstaff@example.edu",
        "teacher@example.edu",
    ]
    assert all(sender == FROM for sender, _, _ in mailbox.messages)
    assert all(len(rcpts) == 1 for _, rcpts, _ in mailbox.messages), "one message per person"
    assert_notice(delivered["ada@example.org"], "Dear Ada Lovelace,")
    assert delivered["ada@example.org"]["To"] == "Ada Lovelace <ada@example.org>"
    assert_notice(delivered["teacher@example.edu"], "Hello,")

    report = site.report()
    assert report["notified"] == [
        "lada0000000000000000",
        "lbob0000000000000000",
        "ldee0000000000000000",
        "newstaff",
        "teacher",
    ]
    assert report["failed"] == []
    assert report["no_address"] == [
        {"username": "lcyd0000000000000000", "reason": "no email address on record"}
    ]
    assert report["counts"]["notified"] == 5
    assert "example.org" not in site.report_file.read_text(), "the report keeps no addresses"
    assert "Notified (5):" in proc.stdout
    assert "No address (1):\n  lcyd0000000000000000: no email address on record" in proc.stdout
    assert "ada@example.org" not in proc.stdout + proc.stderr
    assert oct(site.report_file.stat().st_mode & 0o777) == oct(0o600)


def test_a_course_query_reaches_only_that_course(site, smtp_server, mailbox):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    proc = site.notify("--affected", f"course:{COURSE}")
    assert proc.returncode == 0
    assert sorted(mailbox.by_recipient()) == [
        "ada@example.org",
        "bob@example.org",
        "teacher@example.edu",
    ]
    report = site.report()
    assert report["affected"] == f"course:{COURSE}"
    assert [n["username"] for n in report["no_address"]] == ["lcyd0000000000000000"]


def test_csv_of_usernames_reports_unknown_names(site, smtp_server, mailbox, tmp_path):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    csv_file = tmp_path / "affected.csv"
    csv_file.write_text("username\nldee0000000000000000\nnobody-here\n")
    proc = site.notify("--affected", str(csv_file))
    assert proc.returncode == 0
    assert list(mailbox.by_recipient()) == ["dee@example.org"]
    assert site.report()["not_found"] == ["nobody-here"]


def test_a_refused_recipient_fails_alone(site, smtp_server, mailbox):
    mailbox.refuse = {"bob@example.org"}
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    proc = site.notify()
    assert proc.returncode == 3
    assert sorted(mailbox.by_recipient()) == [
        "ada@example.org",
        "dee@example.org",
        "newstaff@example.edu",
        "teacher@example.edu",
    ]
    report = site.report()
    assert report["failed"] == [
        {"username": "lbob0000000000000000", "error": "550 5.1.1 <<address>>: mailbox unavailable"}
    ]
    assert "lbob0000000000000000" not in report["notified"]
    assert len(report["notified"]) == 4
    assert "Failed (1):\n  lbob0000000000000000: 550 5.1.1" in proc.stdout


def test_dry_run_sends_nothing_and_shows_the_plan(site, smtp_server, mailbox):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    proc = site.notify("--dry-run", "--affected", f"group:{OTHER_COURSE}-learner")
    assert proc.returncode == 0
    assert mailbox.messages == []
    assert not site.report_file.exists()
    assert "Dry run: nothing is sent." in proc.stdout
    assert "Would notify (2):\n  lbob0000000000000000\n  ldee0000000000000000" in proc.stdout
    assert f"Subject: Notice of a data breach at LearnHub Test Site: {INCIDENT['title']}" in (
        proc.stdout
    )
    assert INCIDENT["what_you_can_do"] in proc.stdout
    assert "bob@example.org" not in proc.stdout


def test_incomplete_incident_is_refused_before_anything_is_read(site, smtp_server, mailbox):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    site.incident_file.write_text(
        yaml.safe_dump({k: v for k, v in INCIDENT.items() if k != "what_we_are_doing"})
    )
    proc = site.notify()
    assert proc.returncode == 1
    assert "missing field 'what_we_are_doing'" in proc.stderr
    assert mailbox.messages == []


def test_wrong_crypt_key_is_refused(site, smtp_server, mailbox):
    site.configure(host="127.0.0.1", port=smtp_server, security="none")
    proc = site.notify(env={"LEARNHUB_CRYPT_KEY": bytes(32).hex()})
    assert proc.returncode == 1
    assert "not the hub's crypt key" in proc.stderr
    assert mailbox.messages == []


# aiosmtpd warns about AUTH without STARTTLS even when the socket itself is TLS (port 465).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_login_and_a_private_ca(site, tls_smtp_server, mailbox, security):
    port, cert = tls_smtp_server(security)
    site.configure(
        host="127.0.0.1", port=port, security=security, username=SMTP_USER, ca_file=str(cert)
    )
    proc = site.notify(
        "--affected", f"group:{OTHER_COURSE}-learner", env={"LEARNHUB_SMTP_PASSWORD": SMTP_PASSWORD}
    )
    assert proc.returncode == 0
    assert sorted(mailbox.by_recipient()) == ["bob@example.org", "dee@example.org"]
    assert mailbox.logins == [SMTP_USER]
    assert_notice(mailbox.by_recipient()["dee@example.org"], "Dear Dee Elsewhere,")


def test_starttls_refuses_an_untrusted_certificate(site, tls_smtp_server, mailbox):
    port, _ = tls_smtp_server("starttls")
    site.configure(host="127.0.0.1", port=port, security="starttls", username=SMTP_USER)
    proc = site.notify(env={"LEARNHUB_SMTP_PASSWORD": SMTP_PASSWORD})
    assert proc.returncode == 1
    assert "TLS with 127.0.0.1 failed" in proc.stderr
    assert "set smtp.ca_file" in proc.stderr
    assert "Nothing was sent." in proc.stderr
    assert mailbox.messages == []
    assert mailbox.logins == []


def test_wrong_password_is_refused_before_sending(site, tls_smtp_server, mailbox):
    port, cert = tls_smtp_server("starttls")
    site.configure(
        host="127.0.0.1", port=port, security="starttls", username=SMTP_USER, ca_file=str(cert)
    )
    proc = site.notify(env={"LEARNHUB_SMTP_PASSWORD": "wrong"})
    assert proc.returncode == 1
    assert "refused the login of smtp.username 'mailer': 535" in proc.stderr
    assert "wrong" not in proc.stderr
    assert mailbox.messages == []


def test_starttls_is_required_when_configured(site, smtp_server, mailbox):
    # A server that does not offer STARTTLS: the client must not fall back to plain text.
    site.configure(host="127.0.0.1", port=smtp_server, security="starttls")
    proc = site.notify()
    assert proc.returncode == 1
    assert "does not offer STARTTLS" in proc.stderr
    assert mailbox.messages == []
