"""The assignment picker's pages: opened by an LMS's request for links (LTI 1.3 Deep
Linking, LTI 1.1 Content-Item), answered to the LMS in a form the browser posts back."""

from __future__ import annotations

import time
from collections.abc import Callable

from tornado.httpclient import HTTPClientError

from . import assignment_picker as picker
from .courses.hub import course_access
from .errors import LaunchError
from .identity import Identity
from .keys import deep_linking_key
from .lti11 import constants as lti11_constants
from .lti11 import content_item
from .lti13 import constants as lti13_constants
from .lti13 import deep_linking
from .session import LaunchHandler
from .store import STAFF_ROLES, principal_role

PICKER_PATH = "learnhub/assignment-picker"
# Where each LTI version's links launch.
LAUNCH_PATHS = {"1.1": lti11_constants.LAUNCH_PATH, "1.3": lti13_constants.LAUNCH_PATH}
STAFF_ONLY = "Only the course's instructors and TAs can add LearnHub assignments."
ALREADY_ANSWERED = (
    "This choice was already sent to your LMS. To add more assignments, open LearnHub's "
    "assignment selection again from your LMS."
)


class PickerPage(LaunchHandler):
    """A handler that shows the picker: the launch handlers, and the picker's own post
    when a choice must be made again."""

    async def open_picker(
        self, identity: Identity, make_state: Callable[[str, list[dict]], picker.PickerState]
    ) -> None:
        """The course's staff pick assignments to link, from the course service's catalog;
        `make_state(username, catalog)` gives the picker's state.

        The caller has checked where the answer goes; this checks, before anything is
        stored, that the request comes from a course and from its staff. The person is
        then admitted as at any launch (their course, role and groups), but no server is
        started.
        """
        course = identity.course
        if course is None:
            self.fail(
                400,
                "LearnHub adds assignments to a course: this request came from outside "
                "any course. Add the LearnHub activity from inside the course.",
            )
        if principal_role(identity.roles) not in STAFF_ROLES:
            self.fail(403, STAFF_ONLY)
        courses = course_access(self.settings)
        if courses is None:
            self.fail(503, "LearnHub's course service is not configured: tell the operator.")
        user = await self.admit(identity)
        try:
            catalog = await courses.catalog(course.id)
        except (HTTPClientError, OSError) as e:
            self.log.error("Course service did not list course %s: %s", course.id, e)
            self.fail(503, "The course service is not answering: try again in a minute.")
        self.render_picker(make_state(user.name, catalog))

    def render_picker(
        self, state: picker.PickerState, *, sealed: str | None = None, error: str | None = None
    ) -> None:
        """The picker of `state`; shown again after a wrong choice with the same `sealed`
        state, so that its lifetime still counts from the LMS's request."""
        if error:
            self.set_status(400)
        key = deep_linking_key(self.authenticator.crypt_key)
        self.finish(
            self.render_page(
                "learnhub-deep-linking.html",
                action=self.hub.base_url + PICKER_PATH,
                sealed=sealed or picker.seal(state, key),
                state=state,
                points_text=picker.points_text,
                error=error,
            )
        )


class PickerHandler(PickerPage):
    """POST /hub/learnhub/assignment-picker: the picked assignments, answered to the LMS in
    the form its LTI version takes (a signed LtiDeepLinkingResponse, or a ContentItemSelection
    signed with the consumer's secret), which the page posts to the request's return URL."""

    async def post(self):
        learnhub = self.authenticator
        sealed = self.get_body_argument("state", "")
        state = picker.unseal(
            sealed, deep_linking_key(learnhub.crypt_key), lifetime=learnhub.deep_linking_lifetime
        )
        # Still staff of the course: the picker may have stayed open for a while.
        enrollment = learnhub.store.enrollment(state.username, state.course_id)
        if enrollment is None or not enrollment.is_staff:
            self.fail(403, STAFF_ONLY)
        if self.get_body_argument("cancel", None) is not None:
            chosen = []
        else:
            try:
                chosen = picker.choose(state, self.get_body_arguments("assignment"))
            except LaunchError as e:
                self.render_picker(state, sealed=sealed, error=e.message)
                return
        launch_url = self.public_url_for(LAUNCH_PATHS[state.lti_version])
        if state.lti_version == "1.3":
            kid, private_pem = learnhub.tool_keys.signing_key()
            fields = deep_linking.answer_fields(
                state, chosen, launch_url=launch_url, kid=kid, private_pem=private_pem,
                now=time.time(),
            )  # fmt: skip
        else:
            consumer = learnhub.store.get_consumer(state.recipient["consumer_key"])
            if consumer is None:
                self.fail(403, "This LMS is no longer registered with LearnHub.")
            fields = content_item.answer_fields(
                state, chosen, launch_url=launch_url, secret=consumer.secret
            )
        # One answer per picker: a second post (the back button, a double click) would make
        # the LMS add the same links twice.
        if not learnhub.store.spend(
            "assignment-picker:" + sealed, until=time.time() + learnhub.deep_linking_lifetime
        ):
            self.fail(409, ALREADY_ANSWERED)
        self.log.info(
            "LTI %s assignment picker: %d link(s) of course %s sent to its LMS",
            state.lti_version, len(chosen), state.course_id,
        )  # fmt: skip
        self.finish(
            self.render_page(
                "learnhub-deep-linking-return.html",
                action=state.return_url,
                fields=fields,
                titles=[state.offered[name]["title"] for name in chosen],
            )
        )
