"""The committed build of the JupyterLab extension is what its TypeScript source builds to."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learnhub.images import project_files
from learnhub_singleuser import labextension_path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path("extensions", "labextension-src")
BUILT = Path(labextension_path(), "@learnhub", "lab")
REBUILD = "run `make labextension` and commit extensions/labextension"
NODE_NEEDED = "20.19 (or 22.12)"


def node_can_build(version: str) -> bool:
    """Whether `node --version` output names a Node.js that @jupyter/builder's rspack runs on
    (^20.19.0 || >=22.12.0); Debian 12's own nodejs (18.19) does not."""
    try:
        major, minor = (int(part) for part in version.strip().lstrip("v").split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (22, 12) or (major == 20 and minor >= 19)


@pytest.mark.parametrize(
    ("version", "can"),
    [
        ("v20.20.2", True),
        ("v20.18.1", False),
        ("v18.19.0", False),
        ("v22.12.0", True),
        ("v22.11.0", False),
        ("v24.1.0", True),
        ("", False),
    ],
    ids=["20.20", "20.18", "debian-12", "22.12", "22.11", "24", "unreadable"],
)
def test_node_can_build(version, can):
    assert node_can_build(version) is can


def tree(root: Path) -> dict[str, bytes]:
    """{path relative to root: content} of every file under root."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_built_package_json_is_the_source_one():
    """Without a build: what JupyterLab reads of package.json (name, jupyterlab) is current."""
    source = json.loads((SOURCE_ROOT / SOURCE / "package.json").read_text())
    built = json.loads((BUILT / "package.json").read_text())
    build = built["jupyterlab"].pop("_build")
    assert built == source, REBUILD
    assert build["extension"] == "./extension"
    assert (BUILT / build["load"]).is_file()


def test_built_schema_is_the_source_one():
    source = tree(SOURCE_ROOT / SOURCE / "schema")
    built = tree(BUILT / "schemas" / "@learnhub" / "lab")
    assert built.pop("package.json.orig") == (SOURCE_ROOT / SOURCE / "package.json").read_bytes()
    assert built == source, REBUILD


@pytest.mark.integration
def test_committed_build_is_up_to_date(tmp_path):
    """A fresh checkout's source (npm ci from the lockfile, then the build) gives the same
    files, byte for byte, as extensions/labextension holds, built elsewhere."""
    npm, node = shutil.which("npm"), shutil.which("node")
    reason = None
    if npm is None or node is None:
        reason = "Node.js and npm are not installed"
    else:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        if not node_can_build(version):
            reason = f"Node.js {version.strip()} is older than {NODE_NEEDED} (rspack's minimum)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the build test may not skip")
        pytest.skip(reason)
    checkout = tmp_path / "checkout"
    for relative in project_files(SOURCE_ROOT):
        if relative.parts[: len(SOURCE.parts)] == SOURCE.parts:
            (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SOURCE_ROOT / relative, checkout / relative)
    source = checkout / SOURCE
    assert not (source / "node_modules").exists()
    # jupyter-builder (the Python side of JupyterLab's builder) comes with jupyterlab.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in (
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
        [npm, "run", "build"],
    ):
        result = subprocess.run(
            command, cwd=source, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"

    fresh = tree(checkout / "extensions" / "labextension" / "@learnhub" / "lab")
    committed = tree(BUILT)
    assert sorted(fresh) == sorted(committed), REBUILD
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], REBUILD
