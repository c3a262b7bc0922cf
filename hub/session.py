"""After a valid LMS launch: the user, their server, and a short-lived token instead of a cookie."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jupyterhub import orm
from jupyterhub.utils import url_path_join

from learnhub_singleuser.headers import CSP, frame_ancestors_csp
from learnhub_singleuser.tracking import DO_NOT_TRACK_SCOPE, tracking_refused

from .courses.hub import course_access
from .errors import LaunchError
from .identity import Identity, parse_group_name
from .pages import CookielessPage
from .passback import release_held
from .privacy import analytics as stats
from .privacy.handlers import own_page_csp
from .request_body import LimitedBody
from .store import principal_role
from .tokens import SESSION_TOKEN_NOTE

if TYPE_CHECKING:
    from .auth import LearnHubAuthenticator


def session_scopes(username: str, *, do_not_track: bool = False) -> list[str]:
    """What a launch token may do: use and watch this one learner's default server.

    With `do_not_track`, the token also carries the marker that tells the learner's
    server the session asked not to be tracked.
    """
    server = f"{username}/"
    scopes = [f"access:servers!server={server}", f"read:servers!server={server}"]
    return [*scopes, DO_NOT_TRACK_SCOPE] if do_not_track else scopes


def auth_state_for(identity: Identity, previous: dict | None) -> dict:
    """The encrypted auth state: who the LMS says this is, and each course's launch data.

    Name and email are kept only when the platform sent them; a later launch without
    them leaves no stale copy behind.
    """
    courses = dict((previous or {}).get("courses", {}))
    if identity.course:
        courses[identity.course.id] = {
            "title": identity.course.title,
            "roles": sorted(r.value for r in identity.roles),
            "lti_version": identity.lti_version,
            "launch": identity.launch_claims,
        }
    state = {
        "platform": identity.platform,
        "lms_user_id": identity.lms_user_id,
        "lti_version": identity.lti_version,
        "courses": courses,
    }
    if identity.name:
        state["name"] = identity.name
    if identity.email:
        state["email"] = identity.email
    return state


class LaunchHandler(LimitedBody, CookielessPage):
    """Base of the LTI handlers: friendly error pages, no XSRF cookie, no login cookie, and a
    bounded body (hub.max_body_size)."""

    authenticator: LearnHubAuthenticator

    def check_xsrf_cookie(self):
        # Launches are cross-site form posts from the LMS by design; they are
        # authenticated by their OAuth signature or signed id_token, not by a cookie.
        return

    async def prepare(self):
        await super().prepare()
        self.refresh_frame_origins()

    def refresh_frame_origins(self) -> None:
        """Bring the frame-ancestors of every hub page up to the LMSs registered now, this
        answer's included: a platform registered by URL, or with `learnhub lti` while the
        hub runs, may frame LearnHub from its next launch on, without a restart."""
        headers = self.settings.setdefault("headers", {})
        policy = frame_ancestors_csp(
            headers.get(CSP, ""), self.authenticator.current_frame_origins()
        )
        if headers.get(CSP) != policy:
            headers[CSP] = policy
            self.set_header(CSP, own_page_csp(headers))

    def public_url_for(self, path: str) -> str:
        """The URL an LMS uses for a hub path (public_url, not the Host the proxy saw)."""
        return self.authenticator.public_url.rstrip("/") + url_path_join(self.hub.base_url, path)

    def fail(self, status: int, message: str):
        raise LaunchError(status, message)

    def _label_course_groups(self, identity: Identity, group_names: list[str]) -> None:
        """Give this course's groups the LMS title as a label (idempotent)."""
        course = identity.course
        if course is None:
            return
        label = {
            "course_title": course.title,
            "lti_platform": course.platform,
            "lti_context_id": course.context_id,
        }
        changed = False
        for name in group_names:
            parsed = parse_group_name(name)
            if parsed is None or parsed[0] != course.id:
                continue
            group = orm.Group.find(self.db, name)
            if group is None:
                continue
            labelled = {**(group.properties or {}), **label}
            if group.properties != labelled:
                group.properties = labelled
                changed = True
        if changed:
            self.db.commit()

    async def _enroll(self, username: str, identity: Identity) -> None:
        """Record the enrollment, then let the course service build the course.

        The course directory and gradebook are made by the course service, never here:
        a launch waits for nothing but this one upsert.
        """
        course = identity.course
        self.authenticator.store.record_launch(
            username=username,
            course_id=course.id,
            platform=course.platform,
            context_id=course.context_id,
            title=course.title,
            role=principal_role(identity.roles),
            lti_version=identity.lti_version,
            launch=identity.launch_claims,
            name=identity.name,
            email=identity.email,
            assignment=identity.assignment,
        )
        # Grades that waited for a link's launch (grading.unlinked_assignments) may go now.
        release_held(self.authenticator.store, username, course.id)
        courses = course_access(self.settings)
        if courses is not None:
            courses.grant_staff_access(self.db, course.id)
            courses.notify(course.id, username)

    async def admit(self, identity: Identity):
        """Find or create the user of a valid launch, with this course's groups, role and
        enrollment; returns the hub's User."""
        username = self.authenticator.username_for(identity)
        existing = self.find_user(username)
        previous_state = await existing.get_auth_state() if existing else None
        current_groups = [g.name for g in existing.groups] if existing else []
        auth_model = {
            "name": username,
            "groups": identity.groups(current_groups),
            "auth_state": auth_state_for(identity, previous_state),
        }
        user = await self.auth_to_user(auth_model)
        self._label_course_groups(identity, auth_model["groups"])
        if identity.course is not None:
            await self._enroll(user.name, identity)
        self.log.info(
            "LTI %s launch for %s (course %s)",
            identity.lti_version,
            user.name,
            identity.course.id if identity.course else "-",
        )
        return user

    async def start_session(self, identity: Identity) -> None:
        """Admit the person, start their server, hand the browser a scoped token."""
        learnhub = self.authenticator
        user = await self.admit(identity)
        # The launch's DNT or GPC decides for the whole session: nothing is counted now,
        # and the token tells the learner's server (see session_scopes).
        do_not_track = tracking_refused(self.request.headers)
        if self.settings.get(stats.SETTINGS_KEY) and not do_not_track:
            analytics = stats.hub_analytics(self.authenticator)
            stats.record_safely(
                "launch", lambda: analytics.record_launch(identity.lti_version, user.name)
            )

        spawner = user.spawner
        if not spawner.ready and not spawner.pending:
            try:
                await self.spawn_single_user(user)
            except Exception as e:
                self.log.error("Server for %s failed to start: %s", user.name, e)
                raise LaunchError(
                    503,
                    "Your workspace could not be started. Please open the activity again "
                    "from your course in a minute; if it keeps failing, tell your instructor.",
                ) from None

        token = user.new_api_token(
            note=SESSION_TOKEN_NOTE,
            expires_in=learnhub.session_lifetime,
            scopes=session_scopes(user.name, do_not_track=do_not_track),
        )
        self.finish(
            self.render_page(
                "learnhub-waiting.html",
                config_json=script_json(
                    {
                        "token": token,
                        "progressUrl": url_path_join(
                            self.hub.base_url, "api/users", user.escaped_name, "server/progress"
                        ),
                        "labUrl": landing_url(user.url, identity),
                    }
                ),
            )
        )


# A learner server's page that opens the assignment a link names
# (extensions/assignment_links.py).
ASSIGNMENT_LINK_PATH = "learnhub/assignment"


def landing_url(server_url: str, identity: Identity) -> str:
    """Where the launch lands: the assignment its link names (the learner's notebook, or
    formgrader for staff), else JupyterLab."""
    if identity.course is not None and identity.assignment:
        return url_path_join(
            server_url, ASSIGNMENT_LINK_PATH, identity.course.id, identity.assignment
        )
    return url_path_join(server_url, "lab")


def script_json(value) -> str:
    """JSON safe to place inside an inline <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
