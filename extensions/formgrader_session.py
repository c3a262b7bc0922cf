"""Formgrader without cookies: a staff session that lives in the page, as a learner's does.

A learner's JupyterLab keeps its launch token in page config and sends it in a header, so
it needs no cookie. Formgrader's pages are server-rendered and linked by plain links, so
its session used to be this grader server's cookie, and an instructor whose browser
refuses cookies could not grade.

Here the token the hub minted for this grader server alone (learnhub.courses.hub,
formgrader_token_scopes) rides in the page instead:

- each HTML page of a staff session carries it in a JSON data element, with
  `learnhub-formgrader-session.js`, which gives it to formgrader's API calls (jQuery's
  Authorization header) and turns every navigation to a page of this server (link,
  `window.location`, redirect) into a form POST carrying the token in its body: never in a
  URL, a Referer or browser history;
- SessionNavigation turns such a POST (its body holding the token and nothing else, sent
  by a page of this origin) back into the GET it stands for, authenticated by the token as
  JupyterLab's header-authenticated requests are. A POST navigation can therefore only
  ever do what a GET with that token does: read a page.

The grader server's cookie is still set for browsers that keep it (a link opened in a new
tab then works too); nothing depends on it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urljoin, urlsplit

from tornado.web import OutputTransform

from .headers import sent_from_this_site
from .learner_pages import script_json

SESSION_FIELD = "learnhub_session"
SCRIPT_PATH = "learnhub/formgrader-session.js"
DATA_ID = "learnhub-session"
# A navigation's form holds one token; anything bigger is not one.
MAX_NAVIGATION_BYTES = 4096
EXPIRED = "Your formgrader session has expired: open formgrader again from JupyterLab."
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def navigation_token(request) -> str | None:
    """The token of a POST navigation (a urlencoded body of SESSION_FIELD alone), else None."""
    if request.method != "POST" or len(request.body or b"") > MAX_NAVIGATION_BYTES:
        return None
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    try:
        fields = parse_qs(request.body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get(SESSION_FIELD)
    if set(fields) != {SESSION_FIELD} or len(values) != 1 or not values[0]:
        return None
    return values[0]


def session_markup(token: str, *, base_url: str, next_url: str | None = None) -> bytes:
    """The data element and script that keep a staff session in a page; with `next_url`,
    the script goes on there at once (a handoff or a redirect)."""
    data = {"token": token, "field": SESSION_FIELD, "base": base_url}
    if next_url:
        data["next"] = next_url
    script = base_url.rstrip("/") + "/" + SCRIPT_PATH
    return (
        f'<script type="application/json" id="{DATA_ID}">{script_json(data)}</script>'
        f'<script src="{script}"></script>'
    ).encode()


def with_session(page: bytes, markup: bytes) -> bytes:
    """`page` with `markup` before its last </body> (at its end when it has none)."""
    ends = list(_BODY_END.finditer(page))
    if not ends:
        return page + markup
    at = ends[-1].start()
    return page[:at] + markup + page[at:]


def handoff_page(markup: bytes, message: str) -> bytes:
    """A page of its own that only hands the session on (see session_markup's next_url)."""
    return (
        b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        b'<meta name="referrer" content="no-referrer"><title>Formgrader</title></head><body>'
        b'<p id="status" role="status">' + message.encode() + b"</p>" + markup + b"</body></html>"
    )


class SessionNavigation(OutputTransform):
    """A POST navigation of a staff session, made the GET it stands for (see the module)."""

    # This server's base URL; set by install_session_navigation.
    base_url = "/"

    def __init__(self, request):
        super().__init__(request)
        self.token = None
        self.url = request.full_url()
        token = navigation_token(request)
        if token is None or not request.path.startswith(self.base_url):
            return
        if not sent_from_this_site(request.headers, request.host):
            # Another site's form: left a POST, which these pages refuse.
            return
        self.token = token
        request.method = "GET"
        request.headers["Authorization"] = f"token {token}"
        request.body = b""
        request.body_arguments = {}
        for name in ("Content-Type", "Content-Length"):
            if name in request.headers:
                del request.headers[name]
        request.arguments = {k: v for k, v in request.query_arguments.items() if k != SESSION_FIELD}

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if self.token is None:
            return status_code, headers, chunk
        if 300 <= status_code < 400 and "Location" in headers:
            target = urljoin(self.url, headers["Location"])
            parts, here = urlsplit(target), urlsplit(self.url)
            del headers["Location"]
            if parts.netloc == here.netloc and parts.path.startswith(self.base_url):
                # Formgrader redirects (to its first page, to the next submission): the
                # browser follows them with the token, by POST, like any navigation.
                markup = session_markup(self.token, base_url=self.base_url, next_url=target)
                chunk, status_code = handoff_page(markup, "Opening formgrader…"), 200
            else:
                # Off to the hub's login: the token was refused.
                chunk, status_code = handoff_page(b"", EXPIRED), 403
            headers["Content-Type"] = "text/html; charset=utf-8"
        elif (
            status_code == 200
            and headers.get("Content-Type", "").startswith("text/html")
            # A whole page, or at least its end: never markup in the middle of a stream.
            and (finishing or _BODY_END.search(chunk))
        ):
            chunk = with_session(chunk, session_markup(self.token, base_url=self.base_url))
        else:
            return status_code, headers, chunk
        if finishing:
            headers["Content-Length"] = str(len(chunk))
        else:
            headers.pop("Content-Length", None)
        headers.pop("Etag", None)
        return status_code, headers, chunk


def install_session_navigation(web_app, base_url: str) -> None:
    """Staff sessions of this grader server may live in their pages (SessionNavigation)."""
    SessionNavigation.base_url = base_url if base_url.endswith("/") else base_url + "/"
    web_app.add_transform(SessionNavigation)
