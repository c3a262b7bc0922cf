"""Privacy promises against the real hub: DNT, analytics, policy pages, HTTPS, one origin."""

import json
import os
import re
import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from learnhub.demo.constants import Role
from learnhub_singleuser.tracking import DO_NOT_TRACK_SCOPE
from tests.support import (
    Hub,
    analytics_totals,
    free_port,
    launch_from,
    lti11_launch,
    lti13_launch,
    self_signed_certificate,
    wait_until_ready,
    write_settings,
)

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000"
OPERATOR = {
    "name": "Python for Everybody (py4e.com)",
    "contact_email": "privacy@py4e.example",
    "postal_address": "c/o Learning Experiences\n2190 Aurelius Rd. Unit 175\nHolt MI 48842-9998",
}
PASSWORD = "a long staff password for the crawl"


def analytics_rows(hub) -> dict[str, list]:
    return {
        "counts": sorted(
            hub.query("select day, metric, key, count from learnhub_analytics_daily_counts")
        ),
        "learners": sorted(hub.query("select day, digest from learnhub_analytics_active_learners")),
    }


def count(totals, metric, key="") -> int:
    return totals.get((metric, key), 0)


def launch(client, hub, lms, version, user_id):
    if version == "1.1":
        return lti11_launch(client, hub, lms, user_id=user_id)
    return lti13_launch(client, lms, user_id=user_id)


def token_scopes(hub, session) -> list[str]:
    response = requests.get(f"{hub.url}/hub/api/user", headers=session.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["scopes"]


# --- Do Not Track and the analytics tables -----------------------------------------------------


@pytest.mark.parametrize("signal", [{"DNT": "1"}, {"Sec-GPC": "1"}], ids=["dnt", "gpc"])
@pytest.mark.parametrize("version", ["1.1", "1.3"])
def test_launch_with_dnt_records_nothing_and_the_session_keeps_the_choice(
    client, hub, lms, version, signal
):
    before = analytics_totals(hub)
    client.headers.update(signal)  # every request of this browser says so
    waiting = launch(client, hub, lms, version, f"private-{version}-{next(iter(signal))}")
    assert waiting.headers["Tk"] == "N"
    session = launch_from(hub.url, waiting)
    wait_until_ready(client, session)  # the spawn, and so its pre-spawn hook, are done
    assert DO_NOT_TRACK_SCOPE in token_scopes(hub, session)

    # Later requests of the session without the header: the token carries the choice.
    lab = requests.get(
        f"{hub.url}{session.lab_url}?token={session.token}", allow_redirects=False, timeout=30
    )
    assert lab.status_code == 200, lab.text[:2000]
    assert lab.headers["Tk"] == "N"
    api = requests.get(session.server_url + "api/contents", headers=session.headers, timeout=30)
    assert api.status_code == 200
    assert api.headers["Tk"] == "N"

    assert analytics_totals(hub) == before


@pytest.mark.parametrize("version", ["1.1", "1.3"])
def test_launch_without_dnt_is_counted_without_naming_anyone(client, hub, lms, version):
    before = analytics_totals(hub)
    waiting = launch(client, hub, lms, version, f"counted-{version}")
    assert "Tk" not in waiting.headers
    session = launch_from(hub.url, waiting)
    wait_until_ready(client, session)
    assert DO_NOT_TRACK_SCOPE not in token_scopes(hub, session)
    lab = requests.get(
        f"{hub.url}{session.lab_url}?token={session.token}", allow_redirects=False, timeout=30
    )
    assert lab.status_code == 200
    assert "Tk" not in lab.headers

    after = analytics_totals(hub)
    assert count(after, "launches", version) == count(before, "launches", version) + 1
    assert count(after, "server_starts") == count(before, "server_starts") + 1
    assert count(after, "active_learners") == count(before, "active_learners") + 1
    stored = json.dumps(analytics_rows(hub))
    assert session.username not in stored and f"counted-{version}" not in stored
    # What the operator reads: every day's launches, as the tables hold them.
    report = hub.cli("analytics")
    assert report.returncode == 0, report.stderr
    for day, metric, key, launches in analytics_rows(hub)["counts"]:
        if (metric, key) == ("launches", version):
            assert f"{day}\tlaunches\t{version}\t{launches}\n" in report.stdout


@pytest.mark.parametrize(
    ("headers", "counted", "tk"),
    [({}, 1, None), ({"DNT": "1"}, 0, "N"), ({"Sec-GPC": "1"}, 0, "N"), ({"DNT": "0"}, 1, None)],
    ids=["plain", "dnt", "gpc", "dnt-0"],
)
@pytest.mark.parametrize(("path", "route"), [("login", "/hub/login"), ("privacy", "/hub/privacy")])
def test_hub_page_views_are_counted_by_route_unless_refused(
    client, hub, path, route, headers, counted, tk
):
    before = analytics_totals(hub)
    page = client.get(f"{hub.url}/hub/{path}", headers=headers)
    assert page.status_code == 200
    assert page.headers.get("Tk") == tk
    # The hub counts a page after sending it: once a later page is counted, so is this one.
    assert client.get(f"{hub.url}/hub/signup").status_code == 200
    deadline = time.monotonic() + 10
    while count(analytics_totals(hub), "page_views", "/hub/signup") == count(
        before, "page_views", "/hub/signup"
    ):
        assert time.monotonic() < deadline, "the hub counted no page view"
        time.sleep(0.1)
    after = analytics_totals(hub)
    assert count(after, "page_views", route) == count(before, "page_views", route) + counted


# --- the policy pages --------------------------------------------------------------------------


def test_dnt_policy_is_served_at_the_root_through_the_proxy(client, hub):
    response = client.get(f"{hub.url}/.well-known/dnt-policy.txt", allow_redirects=False)
    assert response.status_code == 200, (response.status_code, response.headers)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert f"Privacy policy: {hub.url}/hub/privacy" in response.text
    assert '"Tk: N"' in response.text
    assert "This is not the EFF's" in response.text
    # The route takes /.well-known/ to the hub; what it does not serve is a plain 404.
    missing = client.get(f"{hub.url}/.well-known/security.txt", allow_redirects=False)
    assert missing.status_code == 404


def test_privacy_page_works_without_cookies_and_in_the_lms_frame(client, hub, lms):
    page = client.get(f"{hub.url}/hub/privacy", headers={"DNT": "1"})
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Set-Cookie" not in page.headers
    assert page.headers["Content-Security-Policy"] == (
        f"default-src 'self'; frame-ancestors 'self' {lms.url}"
    )
    assert page.headers["Tk"] == "N"
    assert "<h1>Privacy policy</h1>" in page.text
    # The session hub names no operator and serves plain HTTP: the page says both.
    assert "has not published contact details here yet" in page.text
    assert 'id="no-https"' in page.text
    assert "Strict-Transport-Security" not in page.headers


@pytest.mark.parametrize("path", ["login", "signup", "privacy", "no-such-page"])
def test_every_hub_page_links_the_privacy_policy(client, hub, path):
    page = client.get(f"{hub.url}/hub/{path}")
    assert page.status_code in (200, 404)
    assert re.search(r'<a id="privacy-link" href="/hub/privacy"', page.text), page.text[-2000:]


def test_launch_pages_link_the_privacy_policy_in_a_new_tab(client, hub, lms):
    waiting = lti11_launch(client, hub, lms, user_id="links-policy")
    refused = client.post(f"{hub.url}/hub/lti11/launch", data={}, allow_redirects=False)
    for page in (waiting, refused):
        assert 'href="/hub/privacy" target="_blank" rel="noopener"' in page.text


# --- no URL of another origin on any hub page or the JupyterLab page ---------------------------


class Resources(HTMLParser):
    """Every URL a page loads or links, and the CSS it holds inline."""

    LOADS = {"src", "action", "formaction", "poster", "data", "background"}

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.stylesheets: list[str] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if not value:
                continue
            if name in self.LOADS:
                self.loads.append(value)
            elif name == "srcset":
                self.loads += [part.split()[0] for part in value.split(",") if part.strip()]
            elif name == "href":
                # <a> and <area> are links a person follows; <link> is loaded by the page.
                (self.links if tag in ("a", "area") else self.loads).append(value)
                if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
                    self.stylesheets.append(value)
            elif name == "style":
                self.css.append(value)
            elif name == "content" and (attrs.get("http-equiv") or "").lower() == "refresh":
                self.loads.append(value.partition("url=")[2])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def css_urls(css: str) -> list[str]:
    return [a or b for a, b in CSS_URL.findall(css)]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def foreign(urls, base: str) -> list[str]:
    """The URLs (resolved against `base`) of a web origin other than base's.

    mailto:, data:, blob: and javascript: URLs reach no server; ws(s) counts as http(s).
    """
    out = []
    for url in urls:
        resolved = urljoin(base, url.strip())
        scheme = urlsplit(resolved).scheme
        if scheme not in ("http", "https", "ws", "wss"):
            continue
        as_http = "http" + resolved[2:] if scheme.startswith("ws") else resolved
        if origin(as_http) != origin(base):
            out.append(resolved)
    return out


def crawl(session, response, verify=True) -> tuple[list[str], list[str]]:
    """(foreign URLs the page loads, foreign URLs it links) for an HTML response.

    Same-origin stylesheets are fetched and their url()s and @imports checked too.
    """
    assert response.headers["Content-Type"].startswith("text/html"), response.url
    base = response.url
    page = Resources()
    page.feed(response.text)
    loads = foreign(page.loads, base)
    for css in page.css:
        loads += foreign(css_urls(css), base)
    pending = [urljoin(base, s) for s in page.stylesheets if not foreign([s], base)]
    seen = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        sheet = session.get(url, timeout=30, verify=verify)
        assert sheet.status_code == 200, url
        found = css_urls(sheet.text)
        loads += foreign(found, url)
        pending += [urljoin(url, u) for u in found if u.endswith(".css") and not foreign([u], url)]
    return loads, foreign(page.links, base)


def test_learner_pages_load_nothing_from_another_origin(client, hub, lms):
    pages = {
        "login": client.get(f"{hub.url}/hub/login"),
        "signup": client.get(f"{hub.url}/hub/signup"),
        "privacy": client.get(f"{hub.url}/hub/privacy"),
        "404": client.get(f"{hub.url}/hub/no-such-page"),
        "launch error": client.post(f"{hub.url}/hub/lti11/launch", data={}),
    }
    login_url, params = lms.initiate_lti13(
        user_id="crawl-storage", roles=[Role.LEARNER], context_id="crawl", storage_target="_parent"
    )
    pages["lti storage"] = client.get(login_url, params=params, allow_redirects=False)
    waiting = lti11_launch(client, hub, lms, user_id="crawl-learner")
    pages["waiting"] = waiting
    session = launch_from(hub.url, waiting)
    wait_until_ready(client, session)
    pages["jupyterlab"] = client.get(f"{hub.url}{session.lab_url}?token={session.token}")
    assert "jupyter-config-data" in pages["jupyterlab"].text

    found = {name: crawl(client, response) for name, response in pages.items()}
    assert {name: loads for name, (loads, _) in found.items() if loads} == {}
    assert {name: links for name, (_, links) in found.items() if links} == {}

    # The registration JSON's endpoints are all this hub's (its scopes are URIs that name
    # LTI services, not locations anything fetches).
    config = client.get(f"{hub.url}/hub/lti13/config").json()
    config.pop("scopes")
    urls = re.findall(r'"(https?://[^"]+)"', json.dumps(config))
    assert len(urls) >= 9
    assert foreign(urls, hub.url) == []


# --- HTTPS: a hub serving a certificate the test makes --------------------------------------------


@pytest.fixture(scope="module")
def https_hub(tmp_path_factory):
    """A second hub, on https with a certificate of its own and the operator's details."""
    state = tmp_path_factory.mktemp("https-hub-state")
    cert, key = (str(p) for p in self_signed_certificate(state))
    url = f"https://127.0.0.1:{free_port()}"
    config = state / "learnhub.yaml"
    write_settings(config, url, tls={"cert_file": cert, "key_file": key}, operator=OPERATOR)
    instance = Hub(url=url, state_dir=state, config_file=config, log_path=state / "hub.log")
    # Hub.start polls the hub with requests, which must trust the certificate.
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = cert
    try:
        instance.start()
        yield instance, cert
    finally:
        instance.shutdown_everything()
        if previous is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous


def test_https_hub_sends_hsts_and_the_http_hub_does_not(https_hub, hub, client):
    instance, cert = https_hub
    for path in ("login", "privacy", "no-such-page"):
        response = requests.get(f"{instance.url}/hub/{path}", verify=cert, timeout=30)
        assert response.url.startswith("https://")
        assert response.headers["Strict-Transport-Security"] == HSTS, path
    plain = client.get(f"{hub.url}/hub/login")
    assert "Strict-Transport-Security" not in plain.headers


def test_https_hub_policy_names_the_operator(https_hub):
    instance, cert = https_hub
    page = requests.get(f"{instance.url}/hub/privacy", verify=cert, timeout=30)
    assert page.status_code == 200
    assert "how Python for Everybody (py4e.com) collects" in page.text
    assert '<a href="mailto:privacy@py4e.example">privacy@py4e.example</a>' in page.text
    assert "2190 Aurelius Rd. Unit 175<br>" in page.text
    assert "Connections to the site use HTTPS (TLS) encryption." in page.text
    statement = requests.get(
        f"{instance.url}/.well-known/dnt-policy.txt", verify=cert, allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    assert statement.status_code == 200
    assert "Operated by: Python for Everybody (py4e.com)" in statement.text
    assert "Contact: privacy@py4e.example" in statement.text


def xsrf(html: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


def test_staff_pages_load_nothing_from_another_origin(https_hub):
    instance, cert = https_hub
    staff = requests.Session()
    staff.verify = cert
    signup = staff.get(f"{instance.url}/hub/signup")
    created = staff.post(
        f"{instance.url}/hub/signup",
        data={
            "_xsrf": xsrf(signup.text),
            "username": "admin",
            "signup_password": PASSWORD,
            "signup_password_confirmation": PASSWORD,
        },
    )
    assert created.status_code == 200
    login = staff.get(f"{instance.url}/hub/login")
    home = staff.post(
        f"{instance.url}/hub/login?next=/hub/home",
        data={"_xsrf": xsrf(login.text), "username": "admin", "password": PASSWORD},
    )
    assert home.url.endswith("/hub/home"), home.url
    pages = {
        "home": home,
        "token": staff.get(f"{instance.url}/hub/token"),
        "admin": staff.get(f"{instance.url}/hub/admin"),
        "authorize": staff.get(f"{instance.url}/hub/authorize"),
        "change-password": staff.get(f"{instance.url}/hub/change-password"),
        "signup": signup,
        "login": login,
        "privacy": staff.get(f"{instance.url}/hub/privacy"),
        "404": staff.get(f"{instance.url}/hub/no-such-page"),
    }
    found = {name: crawl(staff, response, verify=cert) for name, response in pages.items()}
    assert {name: loads for name, (loads, _) in found.items() if loads} == {}
    # Links a person may follow: only JupyterHub's token page has one, to its documentation.
    assert {name: links for name, (_, links) in found.items() if links} == {
        "token": ["https://jupyterhub.readthedocs.io/en/stable/rbac/scopes.html#available-scopes"]
    }
    for name in ("home", "token", "admin"):
        assert 'id="privacy-link" href="/hub/privacy"' in pages[name].text, name
