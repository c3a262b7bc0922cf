"""LearnHub single-user server extension: cookieless LMS sessions in the learner server."""

from __future__ import annotations

from pathlib import Path


def labextension_path() -> str:
    """Return the directory that holds the prebuilt JupyterLab extension `@learnhub/lab`
    (built from `labextension-src/` by `make labextension`, committed).

    JupyterLab lists `<dir>/@scope/name/package.json` and serves the files under the
    package's name, so the folder keeps the scoped layout.
    """
    return str(Path(__file__).parent / "labextension")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "learnhub_singleuser.extension"}]
