"""The privacy policy page and the Do Not Track statement, from the operator's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader

DEFAULT_TEMPLATE = "privacy.html"
# When LearnHub's default policy text last changed; an operator's own template says its own.
POLICY_TEXT_EDITED = "29 November 2026"
PRIVACY_PATH = "privacy"
DNT_POLICY_PATH = ".well-known/dnt-policy.txt"


@dataclass(frozen=True)
class PolicyFacts:
    """What the policy says that depends on this installation: who runs it, and how."""

    operator_name: str | None
    contact_email: str | None
    postal_address: str | None
    public_url: str
    https: bool
    analytics: bool
    login_state_minutes: int
    notebook_egress: bool
    retention: bool

    @property
    def site(self) -> str:
        return urlsplit(self.public_url).netloc

    @property
    def who(self) -> str:
        """The operator as the policy names them."""
        return self.operator_name or "the operator of this LearnHub site"

    @property
    def postal_lines(self) -> list[str]:
        return [line.strip() for line in (self.postal_address or "").splitlines() if line.strip()]

    @property
    def has_contact(self) -> bool:
        return bool(self.contact_email or self.postal_lines)

    def namespace(self) -> dict[str, Any]:
        """Template variables: the facts, plus `policy` for templates that want the object."""
        return {
            "policy": self,
            "operator_name": self.operator_name,
            "contact_email": self.contact_email,
            "postal_lines": self.postal_lines,
            "site": self.site,
            "public_url": self.public_url,
            "last_edited": POLICY_TEXT_EDITED,
        }


def facts_from_settings(values: dict[str, Any]) -> PolicyFacts:
    """PolicyFacts from validated settings values (Settings.values)."""
    operator = values["operator"]
    public_url = values["public_url"].rstrip("/")
    return PolicyFacts(
        operator_name=operator["name"],
        contact_email=operator["contact_email"],
        postal_address=operator["postal_address"],
        public_url=public_url,
        https=public_url.startswith("https://"),
        analytics=values["privacy"]["analytics"],
        login_state_minutes=max(1, values["lti"]["login_state_lifetime"] // 60),
        notebook_egress=values.get("spawner", {}).get("egress", True),
        # Automatic expiry of inactive data is promised by the policy but not built yet;
        # until a retention section exists, the page says so instead of promising it.
        retention="retention" in values,
    )


def policy_environment(templates: Path, template_file: str | None) -> tuple[Environment, str]:
    """A Jinja environment for the policy page and the name of the template to render.

    An operator's own template is looked up first, in its own folder, so it may extend
    LearnHub's learnhub-base.html.
    """
    loaders = [FileSystemLoader(str(templates))]
    name = DEFAULT_TEMPLATE
    if template_file:
        path = Path(template_file)
        loaders.insert(0, FileSystemLoader(str(path.parent)))
        name = path.name
    return Environment(loader=ChoiceLoader(loaders), autoescape=True), name


def render_policy(env: Environment, name: str, facts: PolicyFacts, base_url: str, **ns) -> str:
    return env.get_template(name).render(base_url=base_url, **facts.namespace(), **ns)


@dataclass
class PrivacyPages:
    """What the hub serves about privacy: the policy page and the Do Not Track statement."""

    facts: PolicyFacts
    templates: Path
    template_file: str | None = None

    def __post_init__(self):
        self._env, self._name = policy_environment(self.templates, self.template_file)

    def policy_page(self, base_url: str) -> str:
        return render_policy(self._env, self._name, self.facts, base_url)

    def dnt_policy(self, base_url: str) -> str:
        return dnt_policy_text(self.facts, base_url)


def dnt_policy_text(facts: PolicyFacts, hub_base_url: str = "/hub/") -> str:
    """The statement served at /.well-known/dnt-policy.txt: what DNT changes here, truthfully.

    It is not EFF's DNT Compliance Policy and says so: that policy must be posted
    verbatim and limits logs of DNT users to 10 days, which LearnHub cannot promise
    because the hub's logs are kept however the operator keeps them.
    """
    operator = facts.operator_name or "(the operator has not named itself in the settings)"
    contact = facts.contact_email or "see the privacy policy"
    return f"""\
LearnHub: how this site handles Do Not Track
============================================

Site: {facts.public_url}
Operated by: {operator}
Contact: {contact}
Privacy policy: {facts.public_url}{hub_base_url}{PRIVACY_PATH}

When a request carries "DNT: 1" (Do Not Track) or "Sec-GPC: 1" (Global
Privacy Control), this site:

1. Records no statistics about it. LearnHub's own statistics are daily
   counts kept in this site's database: launches per LTI version, distinct
   learners who launched, learner workspaces started, and page views per
   page of the hub. A request with DNT or GPC adds to none of them.
2. Carries the choice through a launch. When you open an activity from your
   learning platform with DNT or GPC, the session key your browser receives
   says so, and your workspace treats every request of that session the
   same way, whether or not the request itself repeats the signal.
3. Answers with the header "Tk: N" (W3C Tracking Preference Expression:
   not tracking).

For every visitor, with or without DNT:

- LearnHub's pages load nothing from other sites: no advertising, no
  third-party analytics, no social media widgets, no tracking cookies.
- Nothing is sold or handed to third parties for their own purposes.

What this site still keeps, because it needs it to provide the service:

- your account (a pseudonym), your course memberships and roles, your
  files and submissions, and, encrypted, your name and email address when
  your learning platform sends them;
- the time of your last activity, which JupyterHub records for each account;
- the hub's log, which holds request paths, account names and IP
  addresses, for operating and securing the service. How long it is kept
  depends on how the operator stores logs; LearnHub does not limit it.

This is not the EFF's "Do Not Track Compliance Policy": that policy must be
posted word for word and limits the logs kept about DNT users to 10 days,
which this software cannot promise on the operator's behalf.
"""


def policy_findings(values: dict[str, Any]) -> list[tuple[str, str]]:
    """`learnhub doctor`'s (level, message) pairs about the privacy policy page."""
    findings = []
    operator = values["operator"]
    if not operator["contact_email"] and not operator["postal_address"]:
        findings.append(
            (
                "warning",
                "the privacy policy at /hub/privacy gives no contact: set "
                "operator.contact_email (and operator.name, operator.postal_address)",
            )
        )
    template = values["privacy"]["policy_template"]
    if template and not Path(template).is_file():
        findings.append(("error", f"privacy.policy_template {template} is not a file"))
    elif template:
        findings.append(("ok", f"privacy policy: {template}"))
    return findings
