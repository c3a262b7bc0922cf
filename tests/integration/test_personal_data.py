"""A learner's data page in their own server, without cookies: see, download, erase."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from learnhub.demo.lms import DemoLMS
from tests.integration.test_retention import db_bytes, secrets_of, start_hub, user_id
from tests.support import (
    SAME_ORIGIN,
    CookielessClient,
    launch_from,
    lti11_launch,
    lti13_launch,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

ALICE = {"name": "Alice Exportwell", "email": "alice.exportwell@example.edu"}
BOB = {"name": "Bob Neighbourly", "email": "bob.neighbourly@example.edu"}


@pytest.fixture(scope="module")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="mydata-consumer", client_id="mydata", deployment_id="d1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    instance = start_hub(lms, tmp_path_factory.mktemp("mydata-hub"))
    yield instance
    instance.shutdown_everything()


def notebook(text: str) -> dict:
    cell = {"id": "c1", "cell_type": "markdown", "source": text, "metadata": {}}
    return {
        "type": "notebook",
        "content": {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }


def ready(client, hub, response, filename: str, text: str):
    session = launch_from(hub.url, response)
    wait_until_ready(client, session)
    saved = client.put(
        session.server_url + f"api/contents/{filename}",
        headers=session.headers,
        json=notebook(text),
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text
    return session


@pytest.fixture(scope="module")
def people(hub, lms):
    client = CookielessClient()
    alice = ready(
        client,
        hub,
        lti11_launch(client, hub, lms, user_id="alice", context="shared-course", **ALICE),
        "alice-essay.ipynb",
        "Alice's own words about loops",
    )
    bob = ready(
        client,
        hub,
        lti13_launch(client, lms, user_id="bob", context="bob-course", **BOB),
        "bob-essay.ipynb",
        "Bob's own words about strings",
    )
    return alice, bob


def test_the_page_shows_what_is_kept_without_cookies(hub, people):
    alice, bob = people
    client = CookielessClient()
    page = client.get(alice.server_url + "learnhub/my-data", headers=alice.headers, timeout=60)
    assert page.status_code == 200, page.text[:2000]
    assert ALICE["name"] in page.text
    assert ALICE["email"] in page.text
    assert "Course shared-course" in page.text
    assert "1 files in your workspace" in page.text
    for value in (*BOB.values(), bob.username):
        assert value not in page.text
    script = client.get(alice.server_url + "learnhub/my-data/page.js", timeout=30)
    assert script.status_code == 200 and "replaceState" in script.text
    assert client.set_cookie_headers_received == []
    assert client.cookie_headers_sent == []

    described = client.get(
        alice.server_url + "learnhub/my-data/api", headers=alice.headers, timeout=60
    ).json()
    stores = described["stores"]
    assert stores["hub-user"]["email"] == ALICE["email"]
    assert [c["role"] for c in stores["enrollments"]["courses"]] == ["learner"]
    assert stores["files"]["files"] == 1

    # Someone else's token never reaches this server's page.
    foreign = client.get(alice.server_url + "learnhub/my-data/api", headers=bob.headers)
    assert foreign.status_code in (302, 403)


def test_help_menu_posts_the_token_instead_of_putting_it_in_a_url(hub, people):
    """Help > My Data opens a new tab with a form post of the session's token: the page
    comes up without the token ever being in an address, and only for its own learner."""
    alice, bob = people
    client = CookielessClient()
    url = alice.server_url + "learnhub/my-data"
    page = client.post(url, data={"token": alice.token}, headers=SAME_ORIGIN, timeout=60)
    assert page.status_code == 200, page.text[:2000]
    assert page.url == url and "token=" not in page.url
    assert ALICE["name"] in page.text
    assert json.dumps(alice.token) in page.text  # for the page's own calls, in headers
    assert client.set_cookie_headers_received == []
    refusals = [
        ({"token": alice.token}, {}, "Open My Data from JupyterLab"),  # curl: no proof
        ({"token": alice.token}, {"Sec-Fetch-Site": "cross-site"}, "Open My Data"),
        ({"token": bob.token}, SAME_ORIGIN, "session has expired"),  # another learner's
        ({"token": "0" * 32}, SAME_ORIGIN, "session has expired"),
        ({}, SAME_ORIGIN, "session has expired"),
    ]
    for form, headers, message in refusals:
        refused = client.post(url, data=form, headers=headers, timeout=60)
        assert refused.status_code == 403, (form, headers, refused.status_code)
        assert message in refused.text
        assert ALICE["email"] not in refused.text


def test_the_archive_holds_everything_about_the_learner_and_nobody_else(hub, people):
    alice, bob = people
    client = CookielessClient()
    response = client.get(
        alice.server_url + "learnhub/my-data/archive", headers=alice.headers, timeout=120
    )
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "application/zip"
    assert client.set_cookie_headers_received == []
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {
        "learnhub/hub-user/account.json",
        "learnhub/enrollments/enrollments.json",
        "files/alice-essay.ipynb",
    } <= names
    account = json.loads(archive.read("learnhub/hub-user/account.json"))
    assert account["name"] == alice.username
    assert account["auth_state"]["email"] == ALICE["email"]
    (enrollment,) = json.loads(archive.read("learnhub/enrollments/enrollments.json"))
    assert enrollment["name"] == ALICE["name"]
    assert enrollment["course_title"] == "Course shared-course"
    assert "Alice's own words" in archive.read("files/alice-essay.ipynb").decode()
    everything = b"".join(archive.read(n) for n in names)
    for value in (*BOB.values(), bob.username, "Bob's own words"):
        assert value.encode() not in everything, f"the archive holds {value!r}"


def test_instructor_removes_a_student_from_a_course(hub, people):
    _alice, bob = people
    (course_id,) = hub.query(
        "select course_id from learnhub_enrollments where username = ?", bob.username
    )[0]
    groups = {g for (g,) in hub.query(
        "select g.name from groups g join user_group_map m on m.group_id = g.id "
        "join users u on u.id = m.user_id where u.name = ?", bob.username)}  # fmt: skip
    assert f"{course_id}-learner" in groups
    removed = hub.cli("course", "remove-student", course_id, bob.username)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert hub.query(
        "select count(*) from learnhub_enrollments where username = ?", bob.username
    ) == [(0,)]
    groups = {g for (g,) in hub.query(
        "select g.name from groups g join user_group_map m on m.group_id = g.id "
        "join users u on u.id = m.user_id where u.name = ?", bob.username)}  # fmt: skip
    assert not any(g.startswith(course_id) for g in groups)
    assert user_id(hub, bob.username) is not None  # still a learner of the site
    again = hub.cli("course", "remove-student", course_id, bob.username)
    assert again.returncode == 1 and "not enrolled" in again.stderr


def test_erase_now_leaves_nothing(hub, people):
    alice, bob = people
    from tests.integration.test_retention import Learner

    learner = Learner("alice", alice.username, ALICE["name"], ALICE["email"])
    secrets = secrets_of(hub, learner)
    client = CookielessClient()
    refused = client.post(
        alice.server_url + "learnhub/my-data/erase",
        headers=alice.headers,
        json={"confirm": "yes"},
        timeout=30,
    )
    assert refused.status_code == 400
    assert user_id(hub, alice.username) is not None

    accepted = client.post(
        alice.server_url + "learnhub/my-data/erase",
        headers=alice.headers,
        json={"confirm": alice.username},
        timeout=60,
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"erasing": True}
    assert client.set_cookie_headers_received == []

    deadline = time.monotonic() + 90
    home = hub.state_dir / "homes" / alice.username
    while time.monotonic() < deadline and (user_id(hub, alice.username) or home.exists()):
        time.sleep(0.5)
    assert user_id(hub, alice.username) is None, "the hub user is still there"
    assert not home.exists(), "the home folder is still there"
    assert hub.query(
        "select count(*) from learnhub_enrollments where username = ?", alice.username
    ) == [(0,)]
    time.sleep(2)  # the service compacts the database right after erasing
    data = db_bytes(hub)
    for what, value in secrets.items():
        assert value not in data, f"Alice's {what} can be read back from the database file"
    # Bob is untouched.
    assert user_id(hub, bob.username) is not None
    assert (hub.state_dir / "homes" / bob.username / "bob-essay.ipynb").is_file()
