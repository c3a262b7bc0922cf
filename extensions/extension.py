"""The jupyter-server extension: frame-ancestors, HSTS, Tk, token page config, no token cookie."""

from __future__ import annotations

import os

from jupyter_server.serverapp import ServerApp
from jupyterhub.services.auth import HubOAuth
from jupyterlab_server import LabServerApp
from traitlets import List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from . import labextension_path
from .assignment_links import assignment_link_handlers
from .assignment_list import show_course_titles
from .cookieless import keep_url_token_out_of_cookies, token_page_config_hook
from .course_service import no_course_service_handlers, use_course_service
from .courses import course_page_config_hook
from .formgrader_session import install_session_navigation
from .grader import add_queue_tab, grader_handlers, shorten_token_cache
from .headers import CSP, FRAME_ANCESTORS_ENV, HSTS, HSTS_ENV, check_origins, security_headers
from .mydata import my_data_handlers
from .mysubmissions import my_submissions_handlers
from .staff_pages import secure_formgrader
from .tracking import TrackingStatus, follow_do_not_track_sessions

ROLE_ENV = "LEARNHUB_SERVER_ROLE"
# nbgrader's JupyterLab plugins each kind of server must not show: learners do not create
# assignments or grade; a course's grader server has no assignments to fetch.
PLUGINS_OFF = {
    "learner": (
        "@jupyter/nbgrader:formgrader",
        "@jupyter/nbgrader:create-assignment",
        "@jupyter/nbgrader:course-list",
    ),
    "grader": ("@jupyter/nbgrader:assignment-list",),
}


class LearnHubSingleUser(LoggingConfigurable):
    """Settings of the LearnHub extension in a learner's server."""

    frame_ancestors = List(
        Unicode(),
        help="""Origins (scheme://host[:port]) allowed to frame this server, besides 'self'.

        Sent as `Content-Security-Policy: frame-ancestors 'self' <origins>` on every
        response. Default: the space-separated origins in $LEARNHUB_FRAME_ANCESTORS,
        which the hub's spawner sets; an empty list allows same-origin framing only.
        """,
    ).tag(config=True)

    @default("frame_ancestors")
    def _frame_ancestors_from_env(self) -> list[str]:
        # traitlets does not run @validate on dynamic defaults, so check here too.
        return check_origins(
            os.environ.get(FRAME_ANCESTORS_ENV, "").split(),
            f"${FRAME_ANCESTORS_ENV} (default of LearnHubSingleUser.frame_ancestors)",
        )

    @validate("frame_ancestors")
    def _check_frame_ancestors(self, proposal) -> list[str]:
        return check_origins(proposal.value, "LearnHubSingleUser.frame_ancestors")

    strict_transport_security = Unicode(
        help="""Value of the Strict-Transport-Security header on every response, e.g.
        max-age=31536000; empty sends none. Default: $LEARNHUB_STRICT_TRANSPORT_SECURITY,
        which the hub's spawner sets when LearnHub is served over HTTPS.
        """,
    ).tag(config=True)

    @default("strict_transport_security")
    def _strict_transport_security_from_env(self) -> str:
        return os.environ.get(HSTS_ENV, "").strip()


def _link_jupyter_server_extension(serverapp: ServerApp) -> None:
    # Before formgrader loads (it reads nbgrader's config then): see course_service.
    use_course_service()

    # JupyterLab finds prebuilt extensions in LabServerApp.extra_labextensions_path +
    # labextensions_path, which it reads when it builds its handlers at load time (the
    # route that serves their files) and on each page (the federated_extensions list).
    # Every extension is linked before any is loaded, so appending here reaches LabApp
    # although "jupyterlab" links first. What else was tried does not work here: pip
    # installs no share/jupyter data files for an editable install (and pyproject ships
    # none), _jupyter_labextension_paths is read only by `jupyter labextension develop`,
    # and $JUPYTER_PATH would also change where kernels and every other tool look.
    path = labextension_path()
    for apps in serverapp.extension_manager.extension_apps.values():
        for app in apps:
            if isinstance(app, LabServerApp) and path not in app.extra_labextensions_path:
                app.extra_labextensions_path = [*app.extra_labextensions_path, path]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    # Extensions load in name order, so "jupyterhub" (the singleuser extension, which
    # installs its own page_config_hook and a frame-ancestors 'none' policy) is done by now.
    learnhub = LearnHubSingleUser(parent=serverapp)
    settings = serverapp.web_app.settings

    # JupyterHandler.set_default_headers sends settings["headers"] on every response and
    # takes Content-Security-Policy from there instead of its own default.
    headers = settings.setdefault("headers", {})
    role = os.environ.get(ROLE_ENV, "learner")
    secured = security_headers(headers, learnhub.frame_ancestors)
    if role == "grader":
        # A course's grader server is never framed, not even by its own origin (other
        # users' servers share it): formgrader opens in a tab of its own, as nbgrader
        # advises for JupyterHub 4.1+.
        secured = security_headers(headers, [])
        secured[CSP] = secured[CSP].replace("frame-ancestors 'self'", "frame-ancestors 'none'")
    headers.update(secured)

    if learnhub.strict_transport_security:
        headers[HSTS] = learnhub.strict_transport_security

    settings["page_config_hook"] = course_page_config_hook(
        token_page_config_hook(
            settings.get("page_config_hook"), PLUGINS_OFF.get(role, PLUGINS_OFF["learner"])
        )
    )

    # Tk: N on every response to a request, or a launch session, that refuses tracking.
    # This server records nothing about anyone, with or without DNT: the hub's aggregate
    # counts are LearnHub's only statistics.
    serverapp.web_app.add_transform(TrackingStatus)

    learnhub.log.info("LearnHub: frame-ancestors 'self' %s", " ".join(learnhub.frame_ancestors))

    # The learner's own data page: what is kept, one archive of it, erase now (see mydata).
    serverapp.web_app.add_handlers(".*$", my_data_handlers(serverapp.base_url))
    # Their submissions and how each one's grading went, failures with why (mysubmissions).
    serverapp.web_app.add_handlers(".*$", my_submissions_handlers(serverapp.base_url))
    # Where an assignment's LMS link lands: its notebook, or formgrader for staff.
    serverapp.web_app.add_handlers(".*$", assignment_link_handlers(serverapp.base_url))
    # Before nbgrader's own, which would hide why (see course_service).
    serverapp.web_app.add_handlers(".*$", no_course_service_handlers(serverapp.base_url))
    if role == "grader":
        # Added before nbgrader's own (extensions load in name order), so it answers first.
        serverapp.web_app.add_handlers(".*$", grader_handlers(serverapp.base_url))

    hub_auth = getattr(serverapp.identity_provider, "hub_auth", None)
    if isinstance(hub_auth, HubOAuth) and role == "grader":
        shorten_token_cache(hub_auth)
    if isinstance(hub_auth, HubOAuth):
        keep_url_token_out_of_cookies(hub_auth)
        learnhub.log.info(
            "LearnHub: a ?token= no longer goes into the %s cookie", hub_auth.cookie_name
        )
        follow_do_not_track_sessions(serverapp.identity_provider)


async def _start_jupyter_server_extension(serverapp: ServerApp) -> None:
    # Every extension is loaded by now, nbgrader's formgrader included (it loads after this
    # one, in name order): a grader server's formgrader pages get LearnHub's safeguards.
    if os.environ.get(ROLE_ENV) == "grader":
        add_queue_tab(serverapp.web_app)
        secure_formgrader(serverapp.web_app, serverapp.base_url)
        install_session_navigation(serverapp.web_app, serverapp.base_url)
    # And nbgrader's assignment list: its panel shows course titles (see assignment_list).
    elif show_course_titles(serverapp.web_app.settings):
        serverapp.log.info("LearnHub: the Assignments panel shows course titles")
