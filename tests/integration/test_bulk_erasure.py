"""The hub's bulk erasure (POST /hub/api/learnhub/users/erase) against a real hub: the same
rows gone as JupyterHub's own DELETE /users/:name, busy users left alone, and the hub's
memory consistent afterwards."""

from __future__ import annotations

import pytest
import requests

from learnhub.demo.lms import DemoLMS
from learnhub.privacy.bulk import ERASE_USERS_PATH, MAX_USERS_PER_CALL
from learnhub.privacy.erasure import HubAPI, HubUserStore
from learnhub.privacy.service import service_token
from tests.support import (
    CookielessClient,
    Hub,
    admin_headers,
    launch_from,
    lti11_launch,
    registered_hub,
    stop_server,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

# Every JupyterHub table with a row per user (or per user's server), by the column that says whose.
USER_ROWS = {
    "users": "id",
    "api_tokens": "user_id",
    "spawners": "user_id",
    "oauth_codes": "user_id",
    "user_role_map": "user_id",
    "user_group_map": "user_id",
}


@pytest.fixture(scope="module")
def lms(loop_thread):
    peer = DemoLMS(consumer_key="bulk-consumer", client_id="bulk", deployment_id="d1")
    loop_thread.run(peer.start())
    yield peer
    loop_thread.run(peer.stop())


@pytest.fixture(scope="module")
def hub(lms, tmp_path_factory):
    instance = registered_hub(
        tmp_path_factory.mktemp("bulk-hub"),
        lms,
        spawner={"backend": "local"},
    )
    instance.start()
    yield instance
    instance.shutdown_everything()


@pytest.fixture(scope="module")
def admin(hub) -> dict[str, str]:
    return admin_headers(hub)


@pytest.fixture(scope="module")
def service(hub) -> dict[str, str]:
    """The retention service's token: the caller of the bulk endpoint."""
    return {"Authorization": f"token {service_token(hub.state_dir)}"}


def erase(hub: Hub, headers: dict[str, str], body) -> requests.Response:
    return requests.post(
        f"{hub.url}/hub/{ERASE_USERS_PATH}", headers=headers, json=body, timeout=60
    )


def learner(hub: Hub, lms: DemoLMS, key: str, course: str = "bulk-course") -> str:
    """A learner from a real launch, their server started: tokens, spawner, groups, roles."""
    client = CookielessClient()
    session = launch_from(hub.url, lti11_launch(client, hub, lms, user_id=key, context=course))
    wait_until_ready(client, session)
    return session.username


def rows_of(hub: Hub, user_id: int) -> dict[str, int]:
    return {
        table: hub.query(f"select count(*) from {table} where {column} = ?", user_id)[0][0]  # noqa: S608
        for table, column in USER_ROWS.items()
    }


def user_id(hub: Hub, username: str) -> int:
    return hub.query("select id from users where name = ?", username)[0][0]


def test_bulk_erasure_deletes_stopped_users_and_leaves_running_ones(hub, lms, admin, service):
    stopped = [learner(hub, lms, f"bulk-stopped-{i}") for i in range(2)]
    running = learner(hub, lms, "bulk-running")
    for username in stopped:
        stop_server(hub, admin, username)
    ids = {username: user_id(hub, username) for username in stopped}
    for uid in ids.values():
        found = rows_of(hub, uid)
        # What a launch and a server leave: the account, its role, its course group, a spawner.
        assert found["users"] == found["spawners"] == found["user_group_map"] == 1, found
        assert found["user_role_map"] >= 1, found
    running_before = rows_of(hub, user_id(hub, running))
    clients_before = hub.query("select count(*) from oauth_clients")[0][0]

    response = erase(hub, service, {"users": [*stopped, running, "lnobodyaaaaaaaaaaaaaa"]})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "deleted": sorted(stopped),
        "busy": [running],
        "failed": [],
        "missing": ["lnobodyaaaaaaaaaaaaaa"],
    }
    for username, uid in ids.items():
        assert rows_of(hub, uid) == dict.fromkeys(USER_ROWS, 0), username
    # Their servers' OAuth clients (jupyterhub-user-<name>) went with them.
    assert hub.query(
        "select count(*) from oauth_clients where identifier in (?, ?)",
        *(f"jupyterhub-user-{u}" for u in stopped),
    ) == [(0,)]
    assert hub.query("select count(*) from oauth_clients")[0][0] <= clients_before
    # The running learner is untouched, and the cascades are indexed now.
    assert rows_of(hub, user_id(hub, running)) == running_before
    indexes = {name for (name,) in hub.query("select name from sqlite_master where type='index'")}
    assert {"learnhub_ix_api_tokens_user_id", "learnhub_ix_spawners_user_id"} <= indexes

    # The hub's memory agrees: the deleted are gone from its API, and one launches anew.
    listed = requests.get(f"{hub.url}/hub/api/users/{stopped[0]}", headers=admin, timeout=30)
    assert listed.status_code == 404
    again = learner(hub, lms, "bulk-stopped-0")
    assert again == stopped[0] and user_id(hub, again) != ids[again]


def test_the_user_store_deletes_busy_users_one_by_one(hub, lms, service):
    """Erasure on request comes from a learner whose server runs: the store stops it."""
    username = learner(hub, lms, "bulk-erase-now")
    store = HubUserStore(HubAPI(f"{hub.url}/hub/api", service["Authorization"].split()[1]))
    assert store.erase_many([username, "lnobodybbbbbbbbbbbbbb"]) == 1
    assert hub.query("select count(*) from users where name = ?", username) == [(0,)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"users": "lone"}, "the body must be"),
        ({"names": []}, "the body must be"),
        ({"users": [1, 2]}, "the body must be"),
        ({"users": [f"l{i:019d}" for i in range(MAX_USERS_PER_CALL + 1)]}, "at most"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(hub, service, body, message):
    response = erase(hub, service, body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_only_a_caller_allowed_to_delete_every_user_may_call_it(hub, lms):
    client = CookielessClient()
    session = launch_from(
        hub.url, lti11_launch(client, hub, lms, user_id="bulk-intruder", context="bulk-course")
    )
    target = learner(hub, lms, "bulk-target")
    response = erase(hub, session.headers, {"users": [target]})
    assert response.status_code == 403
    assert hub.query("select count(*) from users where name = ?", target) == [(1,)]
    assert erase(hub, {}, {"users": [target]}).status_code == 403
