"""The exchange's files: what an upload may hold, and a submission's life on disk."""

from __future__ import annotations

import datetime
import json

import pytest

from learnhub.courses.exchange import ExchangeRefused, ExchangeStore, unpack
from tests.support import tarball

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (b"not a tarball", "not a gzipped tar archive"),
        (tarball({"../escape.ipynb": NOTEBOOK}), "outside its folder"),
        (tarball({"/etc/passwd": b"x"}), "outside its folder"),
        (tarball({}, links={"link.ipynb": "/etc/passwd"}), "link or special file"),
        (tarball({f"f{i}.txt": b"x" for i in range(201)}), "holds 201 files"),
        (tarball({"big.ipynb": b"\0" * 3_000_000}), "expands to more than the limit of 1 MB"),
    ],
    ids=["not-tar", "dot-dot", "absolute", "symlink", "too-many-files", "gzip-bomb"],
)
def test_unsafe_uploads_are_refused_with_the_reason(tmp_path, upload, message):
    with pytest.raises(ExchangeRefused, match=message):
        unpack(upload, tmp_path / "into", limit_bytes=1_000_000)
    # Nothing was written, inside the folder or beside it.
    assert not list(tmp_path.rglob("*.ipynb"))


def test_a_plain_upload_is_unpacked(tmp_path):
    written = unpack(tarball({"ps1.ipynb": NOTEBOOK, "data/words.txt": b"a b"}), tmp_path,
                     limit_bytes=1_000_000)  # fmt: skip
    assert sorted(written) == ["data/words.txt", "ps1.ipynb"]
    assert (tmp_path / "data" / "words.txt").read_bytes() == b"a b"


@pytest.fixture
def exchange(tmp_path):
    store = ExchangeStore(tmp_path, submission_limit_bytes=1_000_000)
    store.release("cabcdefghijk", "ps1", tarball({"ps1.ipynb": NOTEBOOK}))
    return store


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"answers.txt": b"42"}, "holds no notebook"),
        ({"ps1.ipynb": b"print(1)"}, "ps1.ipynb is not a valid Jupyter notebook"),
        ({"other.ipynb": NOTEBOOK}, "none of the assignment's notebooks \\(ps1.ipynb\\)"),
    ],
    ids=["no-notebook", "not-json", "wrong-notebook"],
)
def test_a_submission_must_be_the_assignments_notebooks(exchange, files, message):
    with pytest.raises(ExchangeRefused, match=message):
        exchange.submit("cabcdefghijk", "ps1", "lstudent", tarball(files))
    assert exchange.submissions("cabcdefghijk") == []


def test_submissions_are_kept_in_order_late_flagged_with_feedback(exchange):
    due = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    early = exchange.submit("cabcdefghijk", "ps1", "lstudent", tarball({"ps1.ipynb": NOTEBOOK}),
                            duedate=due, now=due - datetime.timedelta(hours=1))  # fmt: skip
    late = exchange.submit("cabcdefghijk", "ps1", "lstudent", tarball({"ps1.ipynb": NOTEBOOK}),
                           duedate=due, now=due + datetime.timedelta(hours=1))  # fmt: skip
    assert (early.late, late.late) == (False, True)
    assert [s.id for s in exchange.submissions("cabcdefghijk", "ps1", "lstudent")] == [
        early.id,
        late.id,
    ]
    assert late.timestamp == "2026-01-02 01:00:00.000000 UTC"
    exchange.release_feedback(late, tarball({"ps1.html": b"<p>well done</p>"}))
    assert set(late.feedback()) == {"ps1"} and early.feedback() == {}
    with pytest.raises(ExchangeRefused, match="HTML files"):
        exchange.release_feedback(early, tarball({"x.sh": b"rm -rf /"}))


def test_an_unreleased_assignment_takes_no_submission(exchange):
    with pytest.raises(ExchangeRefused, match="not released"):
        exchange.submit("cabcdefghijk", "ps9", "lstudent", tarball({"ps9.ipynb": NOTEBOOK}))
