"""Breach notification's pure parts: incident files, whom to notify, pacing, the message."""

import argparse
import datetime as dt
import json

import pytest
from jupyterhub.crypto import CryptKeeper
from traitlets.config import Config

from learnhub.cli.breach import add_commands, cmd_notify_breach
from learnhub.keys import auth_state_key
from learnhub.privacy.breach import (
    NO_ADDRESS,
    UNREADABLE,
    Account,
    Affected,
    AffectedError,
    Incident,
    IncidentError,
    Recipient,
    Report,
    Sender,
    build_message,
    load_incident,
    parse_affected,
    parse_incident,
    recipient_from,
    resolve_recipients,
    select_accounts,
    sending_problems,
)
from learnhub.privacy.mail import PASSWORD_ENV, SmtpServer, SmtpSettingsError, TokenBucket
from learnhub.settings import SettingsError, validate

INCIDENT_YAML = """\
title: Learner names and emails exposed by a misconfigured backup
occurred: 2026-05-20
discovered: 2026-05-28
data_affected:
  - names
  - email addresses
what_happened: >
  A nightly backup of the hub database was copied to a storage bucket that
  could be read without a password between 20 and 28 May 2026.
what_we_are_doing: >
  We removed the copy, rotated every key it held and now check backup
  permissions every night.
what_you_can_do: You need not do anything; be wary of emails asking for passwords.
contact: Write to privacy@py4e.example with any question.
"""

INCIDENT_MD = """\
---
title: Grades visible to other learners for two hours
occurred: "2026-06-01, 14:00 to 16:00 UTC"
discovered: 2026-06-01
---

## What happened

A change to the grading service showed each learner's score for one assignment
to other learners of the same course for about two hours.

## Data affected

- course grades
- pseudonymous usernames

## What we are doing

We reverted the change and added a test that checks scores stay private.

## What you can do

Nothing is needed on your side.
"""


def test_yaml_incident_is_read_with_dates_as_text():
    incident = parse_incident(INCIDENT_YAML)
    assert incident.title == "Learner names and emails exposed by a misconfigured backup"
    assert incident.occurred == "2026-05-20"
    assert incident.discovered == "2026-05-28"
    assert incident.data_affected == ("names", "email addresses")
    assert "storage bucket" in incident.what_happened
    assert incident.contact == "Write to privacy@py4e.example with any question."


def test_markdown_incident_reads_front_matter_and_sections(tmp_path):
    path = tmp_path / "grades.md"
    path.write_text(INCIDENT_MD)
    incident = load_incident(path)
    assert incident.title == "Grades visible to other learners for two hours"
    assert incident.occurred == "2026-06-01, 14:00 to 16:00 UTC"
    assert incident.data_affected == ("course grades", "pseudonymous usernames")
    assert incident.what_happened.startswith("A change to the grading service")
    assert incident.what_you_can_do == "Nothing is needed on your side."
    assert incident.contact is None


REQUIRED = [
    "title",
    "occurred",
    "discovered",
    "data_affected",
    "what_happened",
    "what_we_are_doing",
    "what_you_can_do",
]


@pytest.mark.parametrize("missing", REQUIRED, ids=REQUIRED)
def test_missing_field_is_named(missing):
    import yaml

    data = yaml.safe_load(INCIDENT_YAML)
    del data[missing]
    with pytest.raises(IncidentError) as info:
        parse_incident(yaml.safe_dump(data), name="incident.yaml")
    assert f"incident.yaml: missing field '{missing}'" in str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"what_happened": "Something leaked."}, "field 'what_happened' is too short (17"),
        ({"what_we_are_doing": "Looking."}, "field 'what_we_are_doing' is too short"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"title": ["a", "list"]}, "field 'title'"),
        ({"what_you_can_do": "TODO: write advice here"}, "placeholder 'TODO'"),
        ({"contact": "Write to <contact address>"}, "placeholder '<contact address>'"),
        ({"data_affected": []}, "field 'data_affected'"),
    ],
    ids=["short-story", "short-response", "unknown", "wrong-type", "todo", "angle", "no-data"],
)
def test_invalid_incident_names_the_field(change, expected):
    import yaml

    data = {**yaml.safe_load(INCIDENT_YAML), **change}
    with pytest.raises(IncidentError) as info:
        parse_incident(yaml.safe_dump(data))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title: x\n", "missing field"),
        ("- a list\n", "must hold a mapping"),
        ("title: [unclosed\n", "not valid YAML"),
        (INCIDENT_MD.replace("## Data affected", "## Impact"), "unknown section 'Impact'"),
        (INCIDENT_MD.replace("---\n\n## What", "\n## What", 1), "no closing '---'"),
        (
            INCIDENT_MD.replace(
                "discovered: 2026-06-01\n", "discovered: 2026-06-01\nwhat_happened: twice\n"
            ),
            "both in the front matter and a section",
        ),
    ],
    ids=["partial", "list", "bad-yaml", "unknown-section", "unclosed-front-matter", "twice"],
)
def test_malformed_incident_is_refused(text, expected):
    with pytest.raises(IncidentError, match=expected):
        parse_incident(text)


def test_unreadable_incident_file_is_named(tmp_path):
    with pytest.raises(IncidentError, match=r"cannot read the incident file .*nope\.yaml"):
        load_incident(tmp_path / "nope.yaml")


# --affected


def test_affected_queries(tmp_path):
    assert parse_affected("all").kind == "all"
    since = parse_affected("active-since:2026-01-31")
    assert since.since == dt.datetime(2026, 1, 31)
    assert parse_affected("group:c3kq7ab2xyzd-learner").name == "c3kq7ab2xyzd-learner"
    assert parse_affected("course:c3kq7ab2xyzd").name == "c3kq7ab2xyzd"
    csv_file = tmp_path / "who.csv"
    csv_file.write_text("\ufeffUsername,note\nada,x\n grace \n\nada,dup\n", encoding="utf-8")
    listed = parse_affected(str(csv_file))
    assert listed.kind == "usernames"
    assert listed.usernames == {"ada", "grace"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("everyone", "not a file or a known query"),
        ("name = 'x' OR 1=1", "not a file or a known query"),
        ("sql:select * from users", "not a file or a known query"),
        ("active-since:yesterday", "YYYY-MM-DD"),
        ("course:x'); drop table users; --", "a course id looks like"),
        ("group:", "name the group"),
    ],
    ids=["word", "sql-ish", "sql-prefix", "bad-date", "bad-course", "empty-group"],
)
def test_unsafe_or_unknown_affected_is_refused(value, expected):
    with pytest.raises(AffectedError, match=expected):
        parse_affected(value)


def test_csv_needs_username_column(tmp_path):
    path = tmp_path / "who.csv"
    path.write_text("user,email\nada,a@example.org\n")
    with pytest.raises(AffectedError, match=r"'username' column .*found: user, email"):
        parse_affected(str(path))


ACCOUNTS = [
    Account("ada", frozenset({"c1aaaa-learner"}), dt.datetime(2026, 3, 1)),
    Account("bob", frozenset({"c1aaaa-instructor", "c2bbbb-learner"}), dt.datetime(2026, 1, 30)),
    Account("cyd", frozenset({"c2bbbb-learner"}), None),
    Account("staff", frozenset({"operators"}), dt.datetime(2026, 2, 1)),
]


@pytest.mark.parametrize(
    ("affected", "expected"),
    [
        (Affected("all", "all"), ["ada", "bob", "cyd", "staff"]),
        (parse_affected("active-since:2026-02-01"), ["ada", "staff"]),
        (parse_affected("group:c2bbbb-learner"), ["bob", "cyd"]),
        (parse_affected("course:c1aaaa"), ["ada", "bob"]),
        (Affected("usernames", "csv", usernames=frozenset({"cyd", "ada"})), ["ada", "cyd"]),
    ],
    ids=["all", "active-since", "group", "course", "usernames"],
)
def test_select_accounts(affected, expected):
    chosen, not_found = select_accounts(ACCOUNTS, affected)
    assert [a.username for a in chosen] == expected
    assert not_found == []


def test_listed_usernames_the_hub_does_not_know_are_reported():
    affected = Affected("usernames", "csv", usernames=frozenset({"ada", "zed", "yan"}))
    chosen, not_found = select_accounts(ACCOUNTS, affected)
    assert [a.username for a in chosen] == ["ada"]
    assert not_found == ["yan", "zed"]


@pytest.mark.parametrize(
    "value", ["group:c9zzzz-learner", "course:c9zzzz"], ids=["group", "course"]
)
def test_empty_group_or_course_is_an_error_not_silence(value):
    with pytest.raises(AffectedError, match="no user is in"):
        select_accounts(ACCOUNTS, parse_affected(value))


# Addresses


@pytest.mark.parametrize(
    ("account", "state", "email", "missing"),
    [
        (Account("a"), {"email": "ada@example.org", "name": "Ada"}, "ada@example.org", None),
        (Account("a", staff_email="ops@example.org"), None, "ops@example.org", None),
        (
            Account("a", staff_email="ops@example.org"),
            {"email": "l@example.org"},
            "l@example.org",
            None,
        ),
        (Account("a"), {"name": "Ada"}, None, NO_ADDRESS),
        (Account("a"), None, None, NO_ADDRESS),
        (Account("a"), {"email": "ada@example.org\r\nBcc: all@example.org"}, None, "invalid"),
        (Account("a"), {"email": "not an address"}, None, "invalid"),
        (Account("a"), {"email": 42}, None, "invalid"),
    ],
    ids=["lms", "staff", "lms-wins", "no-email", "no-state", "injection", "garbage", "number"],
)
def test_recipient_address(account, state, email, missing):
    recipient = recipient_from(account, state)
    assert recipient.email == email
    if missing:
        assert missing in recipient.missing
    else:
        assert recipient.missing is None


async def test_resolve_recipients_decrypts_with_the_hub_key():
    key = bytes(range(32))
    keeper = CryptKeeper(config=Config(), keys=[auth_state_key(key)])
    other = CryptKeeper(config=Config(), keys=[auth_state_key(bytes(32))])
    try:
        mine = await keeper.encrypt({"email": "ada@example.org", "name": "Ada Lovelace"})
        foreign = await other.encrypt({"email": "eve@example.org"})
    finally:
        keeper.executor.shutdown()
        other.executor.shutdown()
    recipients = await resolve_recipients(
        [
            Account("ada", encrypted_auth_state=mine),
            Account("eve", encrypted_auth_state=foreign),
            Account("ops", staff_email="ops@example.org"),
        ],
        key,
    )
    assert [(r.username, r.email, r.name, r.missing) for r in recipients] == [
        ("ada", "ada@example.org", "Ada Lovelace", None),
        ("eve", None, None, UNREADABLE),
        ("ops", "ops@example.org", None, None),
    ]


# Pacing


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_paces_to_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(4)]
    assert waits[0] == 0
    assert waits[1:] == [pytest.approx(1.0)] * 3
    assert clock.now == pytest.approx(103.0)


def test_token_bucket_allows_a_burst_then_paces():
    clock = FakeClock()
    bucket = TokenBucket(120, capacity=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == [pytest.approx(0.5)] * 2


def test_token_bucket_does_not_save_up_beyond_capacity():
    clock = FakeClock()
    bucket = TokenBucket(60, capacity=2, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # an idle hour earns no more than the capacity
    waits = [bucket.take() for _ in range(3)]
    assert waits == [0, 0, pytest.approx(1.0)]


@pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (60, 0)], ids=["rate", "capacity"])
def test_token_bucket_refuses_nonsense(rate, capacity):
    with pytest.raises(ValueError, match="TokenBucket"):
        TokenBucket(rate, capacity=capacity)


# The message

SENDER = Sender(
    name="Python for Everybody (py4e.com)",
    from_address="privacy@py4e.example",
    contact_email="questions@py4e.example",
    postal_address="c/o Learning Experiences\n2190 Aurelius Rd. Unit 175\nHolt MI 48842-9998",
    site="https://learnhub.py4e.example",
)


def test_message_carries_the_incident_and_the_operator_contact():
    incident = parse_incident(INCIDENT_YAML)
    recipient = Recipient("lxyz", email="ada@example.org", name="Ada Lovelace")
    message = build_message(incident, SENDER, recipient)
    body = message.get_content()
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    # Quoted, or the parentheses would be read as a header comment.
    assert message["From"] == '"Python for Everybody (py4e.com)" <privacy@py4e.example>'
    assert message["Reply-To"] == "questions@py4e.example"
    assert message["Subject"] == (
        "Notice of a data breach at Python for Everybody (py4e.com): "
        "Learner names and emails exposed by a misconfigured backup"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert body.startswith("Dear Ada Lovelace,\n")
    for text in (
        incident.what_happened.strip(),
        incident.what_we_are_doing.strip(),
        incident.what_you_can_do,
        "It happened: 2026-05-20",
        "We found out: 2026-05-28",
        "- names\n- email addresses",
        "Write to privacy@py4e.example with any question.",
        "questions@py4e.example",
        "2190 Aurelius Rd. Unit 175",
        "https://learnhub.py4e.example",
    ):
        assert text in body
    assert "lxyz" not in body  # the pseudonymous username means nothing to the learner


def test_message_without_name_or_incident_contact_uses_operator_contact():
    incident = parse_incident(INCIDENT_MD)
    message = build_message(incident, SENDER, Recipient("l1", email="x@example.org"))
    body = message.get_content()
    assert body.startswith("Hello,\n")
    assert message["To"] == "x@example.org"
    assert "Write to questions@py4e.example with any question about this incident." in body


def test_a_name_cannot_inject_headers():
    incident = parse_incident(INCIDENT_MD)
    recipient = Recipient("l1", email="x@example.org", name="Eve\r\nBcc: all@example.org")
    message = build_message(incident, SENDER, recipient)
    assert message["Bcc"] is None
    assert "\nBcc:" not in message.as_string()
    assert message.get_content().startswith("Dear Eve Bcc: all@example.org,\n")


def test_message_needs_an_address():
    with pytest.raises(ValueError, match="l1 has no address"):
        build_message(parse_incident(INCIDENT_MD), SENDER, Recipient("l1", missing=NO_ADDRESS))


# Settings


def smtp_settings(**smtp):
    values = validate(
        {
            "smtp": {"host": "smtp.example.edu", "from_address": "p@example.edu", **smtp},
            "operator": {"name": "PY4E", "contact_email": "q@example.edu"},
        }
    )
    return values


def test_smtp_and_operator_defaults():
    values = validate({})
    assert values["smtp"]["port"] == 587
    assert values["smtp"]["security"] == "starttls"
    assert values["smtp"]["rate_per_minute"] == 60
    assert values["operator"]["contact_email"] is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"smtp": {"security": "none", "host": "smtp.example.edu"}}, "set smtp.security to"),
        ({"smtp": {"security": "ssl"}}, "use one of 'starttls', 'tls', 'none'"),
        ({"smtp": {"rate_per_minute": 0}}, "'smtp.rate_per_minute' is 0"),
        ({"smtp": {"from_address": "nobody"}}, "'smtp.from_address'"),
        ({"smtp": {"passwd": "x"}}, "did you mean 'password'?"),
        ({"operator": {"email": "x"}}, "unknown key 'operator.email'"),
    ],
    ids=["plain-remote", "bad-security", "zero-rate", "bad-from", "typo", "unknown"],
)
def test_invalid_smtp_settings_name_the_key(raw, expected):
    with pytest.raises(SettingsError) as info:
        validate(raw)
    assert expected in str(info.value)


def test_plain_smtp_to_loopback_is_allowed():
    assert validate({"smtp": {"security": "none", "host": "127.0.0.1"}})["smtp"]["port"] == 587


def test_password_from_the_environment_wins():
    values = smtp_settings(username="mailer", password="from-file")
    server = SmtpServer.from_settings(values["smtp"], {PASSWORD_ENV: "from-env"})
    assert server.password == "from-env"
    assert "from-env" not in repr(server)
    assert SmtpServer.from_settings(values["smtp"], {}).password == "from-file"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"host": "mail.example.org", "security": "none"}, "only for a loopback smtp.host"),
        ({"host": "h", "username": "u"}, "set LEARNHUB_SMTP_PASSWORD"),
        ({"host": "h", "ca_file": "/nonexistent/ca.pem"}, "smtp.ca_file /nonexistent"),
    ],
    ids=["plain-remote", "no-password", "no-ca-file"],
)
def test_smtp_server_refuses_unsafe_or_incomplete(kwargs, expected):
    with pytest.raises(SmtpSettingsError, match=expected):
        SmtpServer(**kwargs)


def test_sending_problems_name_every_missing_setting():
    incident = parse_incident(INCIDENT_MD)  # no contact of its own
    problems = sending_problems(validate({}), incident, {})
    text = "\n".join(problems)
    assert len(problems) == 4
    for key in ("smtp.host", "smtp.from_address", "operator.name", "operator.contact_email"):
        assert key in text
    assert sending_problems(smtp_settings(), incident, {}) == []


# The report and the command line


def test_report_json_has_counts_and_no_addresses():
    report = Report(incident="t", affected="all", dry_run=False, started="s")
    report.notified = ["ada"]
    report.failed = [{"username": "bob", "error": "550 <address>: no such user"}]
    report.no_address = [{"username": "cyd", "reason": NO_ADDRESS}]
    data = json.loads(report.to_json())
    assert data["counts"] == {
        "notified": 1,
        "would_notify": 0,
        "failed": 1,
        "no_address": 1,
        "not_found": 0,
    }
    assert "would_notify" not in data
    assert "Failed (1):" in report.lines()
    assert "  bob: 550 <address>: no such user" in report.lines()


def test_add_commands_registers_notify_breach():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["notify-breach", "--incident", "i.yaml", "--dry-run"])
    assert args.func is cmd_notify_breach
    assert args.affected == "all"
    assert args.dry_run is True
    with pytest.raises(SystemExit):
        parser.parse_args(["notify-breach"])  # --incident is required


def test_incident_dataclass_is_what_the_parser_returns():
    assert isinstance(parse_incident(INCIDENT_YAML), Incident)
