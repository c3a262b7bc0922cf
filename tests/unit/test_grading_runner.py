"""The sandbox runner's pure parts: paths, marking, what outputs and cgroups say."""

from __future__ import annotations

import pytest

from learnhub.grading.runner import (
    NOT_RUN_ENAME,
    cgroup_counters,
    events_from_outputs,
    mark_not_run,
    safe_relative,
    shorten,
    text_size,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("files/data.csv", "data.csv"),
        ("files/a/b.txt", "a/b.txt"),
        ("files/../x", None),
        ("files//etc/passwd", None),
        ("other/x", None),
        ("files/", None),
    ],
)
def test_safe_relative(name, expected):
    path = safe_relative(name)
    assert (str(path) if path else None) == expected


def test_mark_not_run_touches_code_cells_from_the_start_only():
    cells = [
        {"cell_type": "code", "source": "a", "outputs": []},
        {"cell_type": "markdown", "source": "b"},
        {"cell_type": "code", "source": "c", "outputs": []},
        {"cell_type": "code", "source": "  ", "outputs": []},
    ]
    mark_not_run(cells, 1, "the kernel died")
    assert cells[0]["outputs"] == [] and "outputs" not in cells[1] and cells[3]["outputs"] == []
    assert cells[2]["outputs"][0]["ename"] == NOT_RUN_ENAME
    assert cells[2]["outputs"][0]["evalue"] == "not run: the kernel died"


def test_events_from_outputs():
    def error(ename, evalue=""):
        return {"cell_type": "code", "outputs": [{"output_type": "error", "ename": ename,
                                                  "evalue": evalue}]}  # fmt: skip

    cells = [
        error("MemoryError"),
        error("BlockingIOError", "[Errno 11] Resource temporarily unavailable"),
        error("ValueError"),
    ]
    assert events_from_outputs(cells) == [
        {"reason": "memory", "cell": 0},
        {"reason": "processes", "cell": 1},
    ]


def test_cgroup_counters_v1_and_v2(tmp_path):
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "pids").mkdir()
    (v1 / "memory" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    )
    (v1 / "pids" / "pids.events").write_text("max 5\n")
    assert cgroup_counters(v1) == {"oom_kill": 2, "pids_max": 5}
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (v2 / "pids.events").write_text("max 7\n")
    assert cgroup_counters(v2) == {"oom_kill": 1, "pids_max": 7}
    assert cgroup_counters(tmp_path / "none") == {}


def test_sizes_and_shortening():
    content = {"name": "stdout", "text": "x" * 100}
    assert 100 < text_size(content) < 120
    short = shorten({"traceback": ["y" * 50, "z"]}, 10)
    assert short == {"traceback": ["y" * 10 + "...", "z"]}
