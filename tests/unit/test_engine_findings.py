"""`learnhub doctor` on the engine, its nodes, the storage and the images, from what
`docker info` answers."""

from __future__ import annotations

import yaml

from learnhub.engine_findings import database_place, engine_findings
from learnhub.settings import load_settings

ONE_HOST = {"Name": "vm", "ServerVersion": "20.10.24", "Swarm": {"LocalNodeState": "inactive"}}
SWARM_MANAGER = {
    "Name": "node-1",
    "ServerVersion": "20.10.24",
    "Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "Nodes": 3, "Managers": 1},
}


def settings(tmp_path, **values):
    path = tmp_path / "learnhub.yaml"
    path.write_text(yaml.safe_dump(values))
    return load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})


def test_one_host_with_every_image(tmp_path):
    findings = engine_findings(ONE_HOST, [], settings(tmp_path))
    assert findings[0] == ("ok", "engine: Docker 20.10.24 on vm, one host (no Swarm)")
    level, storage = findings[1]
    assert level == "ok" and storage.startswith("storage, all on this host")
    assert f"gradebooks in {tmp_path / 'state'}" in storage
    assert storage.endswith(f"SQLite at {tmp_path / 'state' / 'learnhub.sqlite'}")
    assert findings[2] == (
        "ok",
        "images on vm: learnhub/learner:latest, learnhub/grader:0.1.0.dev0",
    )
    assert len(findings) == 3


def test_a_swarm_is_named_with_its_nodes_and_what_runs_where(tmp_path):
    level, message = engine_findings(SWARM_MANAGER, [], settings(tmp_path))[0]
    assert level == "warning"
    assert "a Swarm manager of 3 nodes (1 managers)" in message
    assert "run on this node only" in message


def test_missing_images_are_named(tmp_path):
    s = settings(tmp_path, spawner={"images": ["learnhub/learner:latest", "course/py:2"]},
                 grading={"image": "course/grader:2"})  # fmt: skip
    findings = engine_findings(ONE_HOST, ["course/py:2", "course/grader:2"], s)
    assert ("ok", "images on vm: learnhub/learner:latest") in findings
    [(level, message)] = [f for f in findings if "not on" in f[1]]
    assert level == "warning"
    assert message.startswith("images not on vm: course/py:2, course/grader:2")


def test_the_database_is_named_without_its_password(tmp_path):
    s = settings(tmp_path, database={"url": "postgresql+psycopg://lh:s3cret@db.example:5433/lh"})
    assert database_place(s) == "PostgreSQL at db.example:5433/lh"
    assert "s3cret" not in str(engine_findings(ONE_HOST, [], s))
