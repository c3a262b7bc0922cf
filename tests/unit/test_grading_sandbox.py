"""Pure builders of the grading sandboxes: container spec, isolation plan, messages, protocol."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from learnhub.grading.runner import (
    FRAME_MAGIC,
    NOT_RUN_ENAME,
    decode_frame,
    encode_frame,
    read_request,
)
from learnhub.grading.sandbox import (
    DEFAULT_IMAGE,
    Execution,
    LimitEvent,
    Limits,
    container_create_command,
    execute_settings,
    frame_end,
    instructor_message,
    isolation_plan,
    owner_label,
    parse_result,
    process_environment,
    remove_abandoned_folders,
    request_archive,
    stale_containers,
    stopped_notebook,
)
from learnhub.grading.service import NO_ENGINE, SandboxSpec, pick_sandbox

LIMITS = Limits(cpus=0.5, memory_mb=300, pids=50, cell_timeout_s=7, notebook_timeout_s=60)
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "source": "# Intro", "metadata": {}},
        {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []},
        {
            "cell_type": "code",
            "source": "assert x == 1",
            "metadata": {"nbgrader": {"grade_id": "test_x", "grade": True}},
            "outputs": [],
        },
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def option(command: list[str], name: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == name]


def test_container_spec_confines_the_submission():
    command = container_create_command(
        "learnhub/grader:1", LIMITS, "learnhub-grade-x", labels={"org.learnhub.submission": "7"}
    )
    assert option(command, "--label") == [
        "org.learnhub.role=grading-sandbox",
        "org.learnhub.submission=7",
    ]
    assert command[:2] == ["docker", "create"] and command[-1] == "learnhub/grader:1"
    assert option(command, "--network") == ["none"]
    assert "--read-only" in command and "--init" in command and "--interactive" in command
    assert option(command, "--user") == ["1000:1000"]
    assert option(command, "--cap-drop") == ["ALL"]
    assert option(command, "--security-opt") == ["no-new-privileges"]
    assert option(command, "--cpus") == ["0.5"]
    assert option(command, "--memory") == option(command, "--memory-swap") == ["300m"]
    assert option(command, "--pids-limit") == ["50"]
    assert option(command, "--pull") == ["never"]
    assert option(command, "--log-driver") == ["none"]
    tmpfs = option(command, "--tmpfs")
    assert [t.split(":")[0] for t in tmpfs] == ["/tmp", "/srv/submission"]
    assert all("nosuid" in t and "size=64m" in t for t in tmpfs)
    # Nothing of this machine goes in: no mounts, no environment, no published port.
    for forbidden in ("--volume", "-v", "--mount", "--env", "-e", "--env-file", "--publish"):
        assert forbidden not in command
    assert "--privileged" not in command and "--cap-add" not in command


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (LimitEvent("timeout_cell", 3), "Cell 4 ran longer than 7 s and was stopped"),
        (
            LimitEvent("timeout_cell", 2),
            "Cell 3 (test_x) ran longer than 7 s and was stopped",
        ),
        (
            LimitEvent("timeout_notebook", 1),
            "The notebook ran longer than 60 s in all and was stopped (in cell 2); "
            "the cells after that were not run",
        ),
        (LimitEvent("memory"), "The notebook used more than 300 MB of memory"),
        (LimitEvent("memory", 0), "The notebook used more than 300 MB of memory (in cell 1)"),
        (
            LimitEvent("processes", 1),
            "The notebook tried to run more than 50 processes (in cell 2)",
        ),
        (
            LimitEvent("killed", 1),
            "The notebook's kernel died (in cell 2); the cells after that were not run",
        ),
        (
            LimitEvent("output_truncated", 1),
            "Cell 2 printed more than 1 MB of output; the rest was dropped",
        ),
        (
            LimitEvent("error", detail="no answer"),
            "The sandbox could not run the notebook: no answer",
        ),
    ],
    ids=lambda v: v.reason if isinstance(v, LimitEvent) else None,
)
def test_instructor_messages(event, expected):
    assert instructor_message(event, LIMITS, NOTEBOOK) == expected


def test_execution_reason_is_the_most_serious_and_messages_are_not_repeated():
    execution = Execution(
        NOTEBOOK,
        [LimitEvent("output_truncated", 1), LimitEvent("memory", 1), LimitEvent("memory", 1)],
    )
    assert execution.reason == "memory"
    assert len(execution.messages(LIMITS)) == 2
    assert Execution(NOTEBOOK).reason is None


@pytest.mark.parametrize(
    "bad",
    [{"memory_mb": 0}, {"cpus": -1}, {"cell_timeout_s": 400, "notebook_timeout_s": 300}],
    ids=["no-memory", "negative-cpus", "cell-longer-than-notebook"],
)
def test_limits_are_checked(bad):
    with pytest.raises(ValueError, match=r"Limits\."):
        Limits(**bad)


def test_isolation_plan_and_environment_of_the_process_sandbox(tmp_path):
    plan = isolation_plan(LIMITS, 1_500_000_123, tmp_path)
    assert plan["writable"] == [str(tmp_path)]
    assert plan["uid"] == plan["gid"] == 1_500_000_123
    assert plan["rlimits"]["RLIMIT_AS"] == 300 * 2**20
    assert plan["rlimits"]["RLIMIT_NPROC"] == 50
    assert plan["rlimits"]["RLIMIT_CPU"] > LIMITS.notebook_timeout_s
    assert plan["rlimits"]["RLIMIT_CORE"] == 0
    assert {"/root", "/home", "/tmp", "/dev/shm"} <= set(plan["hide"])
    env = process_environment(tmp_path, "/opt/venv/bin/python")
    assert env["HOME"] == str(tmp_path) and env["PATH"].startswith("/opt/venv/bin:")
    assert not {k for k in env if "TOKEN" in k or "SECRET" in k or k.startswith("JUPYTERHUB")}


def test_request_goes_through_the_runner_and_files_land_read_only(tmp_path):
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "data.csv").write_text("a,b\n")
    (files / "sub" / "more.txt").write_text("more")
    (files / "link").symlink_to("/etc/passwd")
    work = tmp_path / "work"
    work.mkdir()
    request = read_request(io.BytesIO(request_archive(NOTEBOOK, files, LIMITS)), work)
    assert request["notebook"] == NOTEBOOK
    assert request["limits"] == {
        "cell_timeout_s": 7, "notebook_timeout_s": 60, "output_bytes": 1_000_000, "pids": 50,
        "execute": dict(execute_settings()),
    }  # fmt: skip
    assert (work / "data.csv").read_text() == "a,b\n"
    assert (work / "sub" / "more.txt").read_text() == "more"
    assert not (work / "link").exists()  # a link could point anywhere on the host
    assert (work / "data.csv").stat().st_mode & 0o777 == 0o444


def test_runner_ignores_paths_that_leave_the_work_directory(tmp_path):
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in [("request.json", b'{"notebook": {}, "limits": {}}'),
                           ("files/../escaped", b"x"), ("/etc/escaped", b"x")]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    work = tmp_path / "work"
    work.mkdir()
    read_request(io.BytesIO(buffer.getvalue()), work)
    assert list(work.iterdir()) == [] and not (tmp_path / "escaped").exists()


def test_result_frame_must_be_whole_and_about_the_notebook_sent():
    executed = json.loads(json.dumps(NOTEBOOK))
    executed["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    answer = {"notebook": executed, "events": [{"reason": "timeout_cell", "cell": 1}]}
    frame = encode_frame(json.dumps(answer).encode())
    notebook, events, warnings = parse_result(frame, NOTEBOOK)
    assert notebook == executed and events == [LimitEvent("timeout_cell", 1)] and warnings == []
    assert decode_frame(frame[:-1]) is None  # cut short
    assert parse_result(b"garbage" + frame, NOTEBOOK) is None  # not at the start
    forged = json.loads(json.dumps(executed))
    forged["cells"][2]["source"] = "pass"  # a test cell changed on the way back
    assert parse_result(encode_frame(json.dumps({"notebook": forged}).encode()), NOTEBOOK) is None


def test_a_notebook_without_an_answer_gets_no_points():
    stopped = stopped_notebook(NOTEBOOK, "the notebook ran longer than 60 s")
    codes = [c for c in stopped["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"][-1]["ename"] == NOT_RUN_ENAME for c in codes)
    assert NOTEBOOK["cells"][1]["outputs"] == []  # the original is left alone


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (encode_frame(b"{}"), len(encode_frame(b"{}"))),
        (encode_frame(b'{"a": 1}')[:-3], len(encode_frame(b'{"a": 1}'))),  # not all here yet
        (FRAME_MAGIC + b"12", None),  # the header is not whole
        (FRAME_MAGIC + b"x2\n{}", None),
        (b"noise" + encode_frame(b"{}"), None),
    ],
    ids=["whole", "partial", "header-cut", "bad-length", "not-a-frame"],
)
def test_frame_end_says_how_much_to_read(data, end):
    assert frame_end(data) == end


def test_stale_containers_are_those_of_dead_processes_of_this_machine():
    listing = "\n".join(
        [
            "learnhub-grade-a here:100",  # dead
            "learnhub-grade-b here:200",  # alive
            "learnhub-grade-c there:100",  # another machine's: not ours to judge
            "learnhub-grade-d here:notapid",
            "learnhub-grade-e",
            "",
        ]
    )
    alive = {200}.__contains__
    assert stale_containers(listing, "here", alive) == ["learnhub-grade-a"]
    assert owner_label("here", 42) == "here:42"


def test_folders_of_killed_graders_are_removed_and_no_others(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    abandoned = tmp_path / f"learnhub-grade-{gone.pid}-abc"
    mine = tmp_path / f"learnhub-grade-{os.getpid()}-def"
    unnamed = tmp_path / "learnhub-grade-xyz"  # not named after its process: not judged
    for folder in (abandoned, mine, unnamed):
        (folder / "work").mkdir(parents=True)
        (folder / "work" / "answer.txt").write_text("42")

    assert remove_abandoned_folders(tmp_path) == [abandoned]
    assert not abandoned.exists()
    assert mine.is_dir() and unnamed.is_dir()


@pytest.mark.parametrize(
    ("spec", "note"),
    [
        (
            pick_sandbox("process", Limits(), DEFAULT_IMAGE),
            "Graded in the process sandbox (process sandbox chosen by grading.sandbox): "
            "learners' code ran as a limited process of the grading service instead of in a "
            "container.",
        ),
        (
            SandboxSpec("process", DEFAULT_IMAGE, Limits(), why=NO_ENGINE),
            "Graded in the process sandbox (no Docker engine answers on this machine): "
            "learners' code ran as a limited process of the grading service instead of in a "
            "container.",
        ),
        (pick_sandbox("docker", Limits(), DEFAULT_IMAGE), None),
    ],
    ids=["chosen", "no-engine", "docker"],
)
def test_the_weaker_sandbox_note_says_why_it_was_used(spec, note):
    assert spec.note == note
