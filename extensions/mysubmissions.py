"""A learner's own submissions page in their server: each submission and how its grading
went, including why one could not be graded (a notebook that never ran, a kernel the
course's image lacks, a sandbox that ran out of time).

The grading service is asked as this server's user (JUPYTERHUB_API_TOKEN carries
access:services!service=learnhub-grading) and answers only with this user's own
submissions (hub.grading.service.MyGradingHandler). Opened and authenticated like My Data
(see learner_pages); the page has no script: Refresh posts the token again.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.utils import url_path_join

from .learner_pages import HubService, LearnerPage

PATH = "learnhub/my-submissions"
SERVICE_URL_ENV = "LEARNHUB_GRADING_URL"


class GradingService(HubService):
    """The hub's learnhub-grading service, as this server's user."""

    @classmethod
    def from_environment(cls) -> GradingService:
        return super().from_environment(SERVICE_URL_ENV, "grading service")

    async def my_submissions(self) -> list[dict[str, Any]]:
        return json.loads(await self.fetch("api/me/grading", timeout=30))["submissions"]


class MySubmissionsPage(LearnerPage):
    """/learnhub/my-submissions: my submissions, newest first, and how each one went."""

    title = "My Submissions"
    opened_from = "JupyterLab's Course menu"

    async def render_page(self, token: str) -> None:
        service = GradingService.from_environment()
        self.finish_template(
            "learnhub-my-submissions.html",
            username=service.username,
            submissions=await service.my_submissions(),
            page=url_path_join(self.base_url, PATH),
            token=token,
        )


def my_submissions_handlers(base_url: str) -> list[tuple[str, type]]:
    return [(url_path_join(base_url, PATH), MySubmissionsPage)]
