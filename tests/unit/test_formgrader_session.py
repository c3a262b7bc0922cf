"""Staff sessions kept in the page (learnhub_singleuser.formgrader_session): a POST
navigation carrying the token becomes the GET it stands for, and its pages carry the token
on; nothing else is let through."""

import json
import re
from urllib.parse import urlencode

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.testing import bind_unused_port

from learnhub_singleuser.formgrader_session import (
    SESSION_FIELD,
    SessionNavigation,
    install_session_navigation,
    navigation_token,
    session_markup,
    with_session,
)

BASE = "/user/grader-c1/"
TOKEN = "t" * 32


def request(body: bytes = b"", method="POST", kind="application/x-www-form-urlencoded"):
    return HTTPServerRequest(
        method=method,
        uri=BASE + "formgrader/",
        headers=HTTPHeaders({"Content-Type": kind}),
        body=body,
    )


@pytest.mark.parametrize(
    ("body", "method", "kind", "found"),
    [
        (urlencode({SESSION_FIELD: TOKEN}).encode(), "POST", None, TOKEN),
        (urlencode({SESSION_FIELD: TOKEN}).encode(), "GET", None, None),
        (urlencode({SESSION_FIELD: TOKEN}).encode(), "POST", "multipart/form-data", None),
        (urlencode({SESSION_FIELD: TOKEN, "x": "1"}).encode(), "POST", None, None),
        (urlencode([(SESSION_FIELD, TOKEN), (SESSION_FIELD, "u")]).encode(), "POST", None, None),
        (urlencode({SESSION_FIELD: ""}).encode(), "POST", None, None),
        (urlencode({"token": TOKEN}).encode(), "POST", None, None),
        (b"\xff\xfe", "POST", None, None),
        (urlencode({SESSION_FIELD: "t" * 5000}).encode(), "POST", None, None),
    ],
    ids=["navigation", "get", "multipart", "more-fields", "twice", "empty", "other-field",
         "not-ascii", "too-big"],
)  # fmt: skip
def test_only_a_form_of_the_token_alone_is_a_navigation(body, method, kind, found):
    made = request(body, method, kind or "application/x-www-form-urlencoded")
    assert navigation_token(made) == found


def test_the_session_goes_before_the_end_of_the_body_and_is_script_safe():
    markup = session_markup("a</script><b>", base_url=BASE)
    page = with_session(b"<html><body><p>x</p></BODY></html>", markup)
    assert page.index(markup) < page.index(b"</BODY>")
    assert b"</script><b>" not in markup.split(b"</script>", 1)[0]
    data = json.loads(re.search(rb'id="learnhub-session">(.*?)</script>', page).group(1))
    assert data == {"token": "a</script><b>", "field": SESSION_FIELD, "base": BASE}
    assert f'src="{BASE}learnhub/formgrader-session.js"'.encode() in markup
    assert with_session(b"no body", b"M") == b"no bodyM"


# A real tornado server with the transform: what a grader server's pages see.


class Page(tornado.web.RequestHandler):
    def get(self, rest):
        self.set_header("Content-Type", "text/html")
        auth = self.request.headers.get("Authorization", "-")
        args = sorted(self.request.arguments)
        self.finish(f"<html><body><p id='auth'>{auth}</p><p id='args'>{args}</p></body></html>")


class Redirect(tornado.web.RequestHandler):
    def get(self, where):
        self.redirect(BASE + "formgrader/page" if where == "here" else "/hub/login")


@pytest.fixture
async def server():
    app = tornado.web.Application(
        [(BASE + r"formgrader/redirect/(\w+)", Redirect), (BASE + r"formgrader/(.*)", Page)]
    )
    install_session_navigation(app, BASE.rstrip("/"))
    sock, port = bind_unused_port()
    http = tornado.httpserver.HTTPServer(app)
    http.add_sockets([sock])
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)

    async def send(path, *, body=None, headers=None):
        return await client.fetch(
            f"http://127.0.0.1:{port}{path}",
            method="POST" if body is not None else "GET",
            body=body,
            headers={"Sec-Fetch-Site": "same-origin", **(headers or {})},
            follow_redirects=False,
            raise_error=False,
        )

    yield send
    client.close()
    http.stop()
    assert SessionNavigation.base_url == BASE


NAVIGATION = urlencode({SESSION_FIELD: TOKEN})


async def test_a_post_navigation_is_the_get_it_stands_for(server):
    response = await server(BASE + "formgrader/gradebook?x=1", body=NAVIGATION)
    assert response.code == 200
    page = response.body.decode()
    # Authenticated by the token, as a header; the body's field is not an argument.
    assert f"<p id='auth'>token {TOKEN}</p>" in page
    assert "<p id='args'>['x']</p>" in page
    assert staff_data(page)["token"] == TOKEN
    assert response.headers["Content-Length"] == str(len(response.body))


def staff_data(page: str) -> dict:
    return json.loads(re.search(r'id="learnhub-session">(.*?)</script>', page).group(1))


async def test_a_get_is_left_alone(server):
    response = await server(BASE + "formgrader/gradebook")
    assert "<p id='auth'>-</p>" in response.body.decode()
    assert b"learnhub-session" not in response.body


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": ""}],
)
async def test_another_sites_form_is_no_navigation(server, headers):
    response = await server(BASE + "formgrader/gradebook", body=NAVIGATION, headers=headers)
    assert response.code == 405  # left a POST, which the page does not take
    assert TOKEN.encode() not in response.body


async def test_a_path_of_another_server_is_no_navigation(server):
    response = await server("/user/grader-c2/formgrader/x", body=NAVIGATION)
    assert response.code == 404


async def test_a_redirect_on_this_server_carries_the_session_on(server):
    response = await server(BASE + "formgrader/redirect/here", body=NAVIGATION)
    assert response.code == 200
    assert "Location" not in response.headers
    data = staff_data(response.body.decode())
    assert data["next"].endswith(BASE + "formgrader/page")
    assert data["token"] == TOKEN


async def test_a_redirect_to_the_login_says_the_session_expired(server):
    response = await server(BASE + "formgrader/redirect/login", body=NAVIGATION)
    assert response.code == 403
    assert "Location" not in response.headers
    assert b"session has expired" in response.body
    assert TOKEN.encode() not in response.body
