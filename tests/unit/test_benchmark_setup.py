"""The benchmarks set themselves up on a fresh machine (no stock virtualenv yet)."""

import importlib.util
import sys

from tests.support import REPO


def load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"benchmarks_{name}"] = module
    spec.loader.exec_module(module)
    return module


def test_a_missing_stock_interpreter_has_no_versions_instead_of_crashing(tmp_path):
    """On a fresh machine every stock herd failed: the missing venv's python was run to ask
    for its versions before the venv was made ([Errno 2] No such file or directory)."""
    herd = load("launch_herd")
    assert herd.installed_versions(tmp_path / "bench-stock" / "bin" / "python") == {}
