"""nbgrader in a server the hub started: the course service as its exchange, or a refusal.

nbgrader reads no configuration from jupyter-server: its assignment list builds a fresh
NbGrader app at every request, which loads nbgrader_config.py from jupyter_config_path()
and the working directory, and formgrader does the same when it starts and before every
API call. So the exchange is set in a config folder shipped inside this package
(`jupyter_config/`), which `use_course_service` puts first on $JUPYTER_CONFIG_PATH: the
folder is found the same way in an editable install, a wheel and the learner image, and
the spawner's own command line (which turns this extension on, in every backend) decides,
not files that only some installs put in `<prefix>/etc/jupyter`. The variable is also what
the server's terminals and kernels inherit, so `nbgrader submit` typed there goes to the
course service too. Servers the hub did not start keep stock nbgrader.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .exchange import EXCHANGE_URL_ENV, NOT_CONFIGURED

CONFIG_DIR = Path(__file__).with_name("jupyter_config")
CONFIG_PATH_ENV = "JUPYTER_CONFIG_PATH"
# Set by JupyterHub for every server it starts (the server's own token), whatever the spawner.
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"  # noqa: S105 (a variable name)


def started_by_hub(environ: MutableMapping[str, str] = os.environ) -> bool:
    return bool(environ.get(HUB_TOKEN_ENV))


def use_course_service(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Put LearnHub's nbgrader config first on $JUPYTER_CONFIG_PATH, in a server the hub
    started (idempotent); whether it did."""
    if not started_by_hub(environ):
        return False
    paths = [p for p in environ.get(CONFIG_PATH_ENV, "").split(os.pathsep) if p]
    if str(CONFIG_DIR) not in paths:
        environ[CONFIG_PATH_ENV] = os.pathsep.join([str(CONFIG_DIR), *paths])
    return True


class NoCourseServiceHandler(APIHandler):
    """nbgrader's assignment list routes in a server with no course service: the reason.

    nbgrader's own handlers would call the exchange, which refuses, but they answer every
    exchange error with their own words about a missing exchange directory, and a fetch
    with the assignment list; the learner would never see why.
    """

    @web.authenticated
    def get(self, *_args):
        self.finish(json.dumps({"success": False, "value": NOT_CONFIGURED}))

    @web.authenticated
    def post(self, *_args):
        self.finish(json.dumps({"success": False, "value": NOT_CONFIGURED}))


def no_course_service_handlers(
    base_url: str, environ: MutableMapping[str, str] = os.environ
) -> list[tuple]:
    """Routes answering before nbgrader's assignment list when the hub started this server
    without LEARNHUB_EXCHANGE_URL; none otherwise."""
    if not started_by_hub(environ) or environ.get(EXCHANGE_URL_ENV):
        return []
    return [
        (url_path_join(base_url, path), NoCourseServiceHandler)
        for path in ("assignments", r"assignments/(fetch|submit|fetch_feedback)", "courses")
    ]
