"""In a course's grader server, formgrader's "autograde" goes to the sandboxed grading service.

nbgrader's own handler runs the learner's code in this server's kernel, with the course's
gradebook and every submission within reach. This handler, registered before nbgrader's,
asks LearnHub's grading service to grade the learner's latest submission in a sandbox.
"""

from __future__ import annotations

import json
import os

import requests
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

GRADING_URL_ENV = "LEARNHUB_GRADING_URL"


class SandboxedAutogradeHandler(APIHandler):
    """POST formgrader/api/submission/<assignment>/<student>/autograde."""

    @web.authenticated
    async def post(self, assignment_id: str, student_id: str):
        base = os.environ.get(GRADING_URL_ENV, "")
        course = os.environ.get("LEARNHUB_COURSE", "")
        if not base or not course:
            self.finish(json.dumps({"success": False, "error": "No grading service here."}))
            return
        try:
            response = await self._post(
                base.rstrip("/") + f"/api/courses/{course}/regrade",
                {"assignment_id": assignment_id, "student_id": student_id},
            )
        except requests.RequestException:
            self.finish(
                json.dumps({"success": False, "error": "The grading service is not answering."})
            )
            return
        if response.status_code != 202:
            message = response.json().get("message", f"grading service: {response.status_code}")
            self.finish(json.dumps({"success": False, "error": message}))
            return
        self.finish(
            json.dumps(
                {
                    "success": True,
                    "log": "Queued for autograding in the sandbox; the score appears here "
                    "when it is graded.",
                }
            )
        )

    async def _post(self, url: str, body: dict) -> requests.Response:
        from asyncio import to_thread

        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        return await to_thread(
            requests.post,
            url,
            json=body,
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )


def grader_handlers(base_url: str) -> list[tuple[str, type]]:
    return [
        (
            url_path_join(base_url, r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde"),
            SandboxedAutogradeHandler,
        )
    ]
