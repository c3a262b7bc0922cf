"""Direct login for staff with NativeAuthenticator: works with cookies, explains without them."""

import re

import pytest
import requests

pytestmark = pytest.mark.integration


def xsrf(html: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


def test_login_page_explains_that_it_needs_cookies(client, hub):
    page = client.get(f"{hub.url}/hub/login")
    assert page.status_code == 200
    assert "Your browser is refusing cookies" in page.text
    assert "open LearnHub from your course in your learning platform" in page.text
    assert 'id="cookie-warning"' in page.text


def test_admin_signs_up_and_logs_in_with_cookies(hub):
    browser = requests.Session()
    signup = browser.get(f"{hub.url}/hub/signup")
    created = browser.post(
        f"{hub.url}/hub/signup",
        data={
            "_xsrf": xsrf(signup.text),
            "username": "admin",
            "signup_password": "correct horse battery staple",
            "signup_password_confirmation": "correct horse battery staple",
        },
    )
    assert created.status_code == 200
    login = browser.get(f"{hub.url}/hub/login")
    home = browser.post(
        f"{hub.url}/hub/login?next=/hub/home",
        data={
            "_xsrf": xsrf(login.text),
            "username": "admin",
            "password": "correct horse battery staple",
        },
    )
    assert home.status_code == 200
    assert home.url.endswith("/hub/home")
    assert "admin" in home.text
    wrong = requests.Session()
    page = wrong.get(f"{hub.url}/hub/login")
    refused = wrong.post(
        f"{hub.url}/hub/login",
        data={"_xsrf": xsrf(page.text), "username": "admin", "password": "wrong password!"},
    )
    assert "/hub/home" not in refused.url


def test_learners_have_no_password_login(hub, lms, client):
    from tests.support import launch_from, lti11_launch

    launch = launch_from(hub.url, lti11_launch(client, hub, lms, user_id="no-password"))
    browser = requests.Session()
    login = browser.get(f"{hub.url}/hub/login")
    response = browser.post(
        f"{hub.url}/hub/login",
        data={"_xsrf": xsrf(login.text), "username": launch.username, "password": ""},
    )
    assert "/hub/home" not in response.url
