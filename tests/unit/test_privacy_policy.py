"""The privacy policy page and the DNT statement, rendered from settings."""

import re
from html.parser import HTMLParser

import pytest

from learnhub.privacy.config import TEMPLATES
from learnhub.privacy.policy import PrivacyPages, facts_from_settings, policy_findings
from learnhub.settings import validate

OPERATOR = {
    "name": "Python for Everybody (py4e.com)",
    "contact_email": "privacy@py4e.example",
    "postal_address": "c/o Learning Experiences\n2190 Aurelius Rd. Unit 175\nHolt MI 48842-9998",
}


def pages(template=None, **values) -> PrivacyPages:
    return PrivacyPages(facts_from_settings(validate(values)), TEMPLATES, template)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]


def test_policy_names_the_operator_and_how_to_reach_them():
    html = pages(operator=OPERATOR, public_url="https://learnhub.py4e.example").policy_page("/hub/")
    text = text_of(html)
    assert "how Python for Everybody (py4e.com) collects, uses, and protects" in text
    assert "at learnhub.py4e.example" in text
    assert 'href="mailto:privacy@py4e.example"' in html
    assert "2190 Aurelius Rd. Unit 175<br>" in html
    assert "Connections to the site use HTTPS (TLS) encryption." in text
    assert 'id="no-https"' not in html


def test_policy_without_operator_details_says_so():
    html = pages().policy_page("/hub/")
    text = text_of(html)
    assert "the operator of this LearnHub site collects" in text
    assert "The operator of this LearnHub site has not published contact details" in text
    assert "mailto:" not in html


def test_policy_does_not_claim_https_on_http():
    html = pages(public_url="http://learnhub.example.edu").policy_page("/hub/")
    assert "use HTTPS (TLS) encryption" not in html
    assert 'id="no-https"' in html


@pytest.mark.parametrize(
    ("analytics", "present", "absent"),
    [
        (True, "They are daily counts", "keeps no statistics"),
        (False, "keeps no statistics", "They are daily counts"),
    ],
    ids=["analytics-on", "analytics-off"],
)
def test_policy_states_the_statistics_kept(analytics, present, absent):
    text = text_of(pages(privacy={"analytics": analytics}).policy_page("/hub/"))
    assert present in text
    assert absent not in text


def test_policy_states_dnt_gpc_and_links_the_statement():
    html = pages().policy_page("/hub/")
    text = text_of(html)
    assert "We honor Do Not Track (DNT) and Global Privacy Control (GPC) signals." in text
    assert 'href="/.well-known/dnt-policy.txt"' in html
    # Not yet built elsewhere: the page says so rather than promising a schedule.
    assert "does not yet delete inactive data on a schedule" in text


def test_policy_page_loads_and_links_nothing_of_another_origin():
    parser = Links()
    parser.feed(pages(operator=OPERATOR).policy_page("/hub/"))
    assert parser.urls
    assert [u for u in parser.urls if re.match(r"^(https?:)?//", u)] == []


def test_operator_template_replaces_the_default(tmp_path):
    own = tmp_path / "our-policy.html"
    own.write_text(
        '{% extends "learnhub-base.html" %}{% block main %}'
        "<h1>Our policy</h1><p>Write to {{ contact_email }} ({{ operator_name }}, {{ site }}).</p>"
        "{% endblock %}"
    )
    html = pages(str(own), operator=OPERATOR).policy_page("/hub/")
    assert "<h1>Our policy</h1>" in html
    assert "Write to privacy@py4e.example (Python for Everybody (py4e.com), 127.0.0.1:8000)" in html
    assert "learnhub/static/learnhub.css" in html  # it extended LearnHub's base page
    assert "We honor Do Not Track" not in html


def test_operator_template_is_escaped(tmp_path):
    own = tmp_path / "p.html"
    own.write_text("{{ operator_name }}")
    html = pages(str(own), operator={**OPERATOR, "name": "<script>x</script>"}).policy_page("/")
    assert html == "&lt;script&gt;x&lt;/script&gt;"


def test_dnt_statement_is_truthful():
    text = pages(operator=OPERATOR, public_url="https://learnhub.py4e.example").dnt_policy("/hub/")
    assert "Privacy policy: https://learnhub.py4e.example/hub/privacy" in text
    assert "Operated by: Python for Everybody (py4e.com)" in text
    assert '"DNT: 1"' in text and '"Sec-GPC: 1"' in text
    assert '"Tk: N"' in text
    # It keeps logs it does not limit, so it must not present itself as EFF's policy.
    assert 'This is not the EFF\'s "Do Not Track Compliance Policy"' in text
    assert "This domain complies with user opt-outs" not in text
    assert "account names and IP addresses" in " ".join(text.split())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [("warning", "gives no contact")]),
        ({"operator": OPERATOR}, []),
        ({"operator": OPERATOR, "privacy": {"policy_template": "/nonexistent/p.html"}},
         [("error", "/nonexistent/p.html is not a file")]),
    ],
    ids=["no-contact", "contact", "missing-template"],
)  # fmt: skip
def test_policy_findings(values, expected):
    findings = policy_findings(validate(values))
    assert [level for level, _ in findings] == [level for level, _ in expected]
    assert all(part in message for (_, message), (_, part) in zip(findings, expected, strict=True))
