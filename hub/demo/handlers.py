"""The demo LMS's tornado handlers: pages, launch and selection routes, OIDC, LTI services."""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import tornado.web

from .constants import (
    ASSERTION_TYPE,
    DL_CLAIM,
    DL_CONTENT_ITEMS_CLAIM,
    DL_DATA_CLAIM,
    LINEITEM_CONTAINER_TYPE,
    LINEITEM_TYPE,
    MEMBERSHIP_CONTAINER_TYPE,
    SCOPE_CONTEXT_MEMBERSHIP_READONLY,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    SCORE_TYPE,
    Role,
)
from .lti11 import (
    OutcomeGrade,
    lti11_custom_params,
    lti11_launch_params,
    outcome_request_problem,
    parse_outcome_request,
    parse_outcome_score,
    pox_response_xml,
)
from .lti13 import LaunchRefused, ToolKeysUnavailable, auth_request_problem, sign_id_token
from .pages import autosubmit_form_html, course_page_html, deep_link_return_html, gradebook_html
from .selection import (
    CourseLink,
    DeepLinkRefused,
    content_item_links,
    deep_link_items,
    verify_content_item_selection,
    verify_deep_linking_response,
)
from .services import (
    TOKEN_SCOPES,
    GradeRefused,
    parse_iso_timestamp,
    validate_new_lineitem,
    validate_score,
    verify_client_assertion,
)

if TYPE_CHECKING:
    from .lms import DemoLMS


# The `role=` choices of the launch routes. A sub-role comes with its principal role,
# as LTI 1.3 asks platforms to do.
ROLE_CHOICES: dict[str, tuple[Role, ...]] = {
    "learner": (Role.LEARNER,),
    "instructor": (Role.INSTRUCTOR,),
    "ta": (Role.INSTRUCTOR, Role.TEACHING_ASSISTANT),
    "content-developer": (Role.CONTENT_DEVELOPER,),
    "administrator": (Role.ADMINISTRATOR,),
}


class LMSHandler(tornado.web.RequestHandler):
    def initialize(self, lms: DemoLMS) -> None:
        self.lms = lms

    def set_default_headers(self) -> None:
        # Pages carry signatures and id_tokens (never cache them), their URLs name
        # users (never send them on as Referer), and only the LMS frames its own pages.
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")

    def refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")

    def all_arguments(self) -> dict[str, list[str]]:
        """Every query and form parameter with all its values, so a repeated one is seen."""
        return {
            name: [v.decode("utf-8", "replace") for v in values]
            for name, values in self.request.arguments.items()
        }

    def launch_arguments(self) -> tuple[str, tuple[Role, ...], str] | None:
        """(user, roles, course) from ?user=&role=&course=, or None after a 400."""
        role = self.get_argument("role", "learner")
        if role not in ROLE_CHOICES:
            self.refuse(400, f"role must be one of: {', '.join(ROLE_CHOICES)}")
            return None
        user = self.get_argument("user", f"demo-{role}")
        return user, ROLE_CHOICES[role], self.get_argument("course", self.lms.course_id)


class CoursePageHandler(LMSHandler):
    def get(self) -> None:
        self.finish(
            course_page_html(
                course_id=self.lms.course_id,
                course_title=self.lms.course_title,
                tool_origins=self.lms.tool_origins(),
                links=self.lms.course_links(self.lms.course_id),
            )
        )


class _LTI11Handler(LMSHandler):
    """A route that sends the browser to the tool's LTI 1.1 launch URL, which it needs."""

    def prepare(self) -> None:
        if not self.lms.tool_lti11_launch_url:
            self.refuse(503, "DemoLMS.tool_lti11_launch_url is not set (see --tool-url)")


class LTI11LaunchHandler(_LTI11Handler):
    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        link_id = self.get_argument("link", "")
        assignment = self.get_argument("assignment", "").strip()
        launch_url = self.lms.tool_lti11_launch_url
        if link_id:
            # A link made by Content-Item launches what the tool put in it.
            link = self.lms.course_link(link_id, course, "1.1")
            if link is None:
                return self.refuse(404, "no such link in this course")
            resource_link_id, custom = link.id, link.custom
            placement = {"resource_link_title": link.title}
            launch_url = link.url or launch_url
        else:
            # ?assignment=ps01 plays a link of its own for that assignment (custom parameter).
            resource_link_id = f"{course}-{assignment}" if assignment else f"{course}-notebooks"
            custom = {"assignment": assignment} if assignment else {}
            placement = {}
        params = lti11_launch_params(
            user_id=user,
            roles=roles,
            context_id=course,
            context_title=self.lms.course_title_for(course),
            resource_link_id=resource_link_id,
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            extra={
                "launch_presentation_document_target": "iframe",
                **placement,
                **lti11_custom_params(custom),
            },
            **self.lms.lti11_outcome_params(user, course, resource_link_id),
        )
        fields = self.lms.sign_lti11(params, launch_url=launch_url)
        self.finish(autosubmit_form_html(launch_url, fields, title="Opening LearnHub…"))


class ContentItemRequestHandler(_LTI11Handler):
    """GET /contentitem11: a ContentItemSelectionRequest, as an LMS's "add content from a
    tool" button over LTI 1.1."""

    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        fields = self.lms.content_item_request(user_id=user, roles=roles, context_id=course)
        self.finish(
            autosubmit_form_html(self.lms.tool_lti11_launch_url, fields, title="Opening LearnHub…")
        )


class _LTI13LoginHandler(LMSHandler):
    """A route that starts an LTI 1.3 login at the tool, which needs both tool URLs."""

    def prepare(self) -> None:
        if not (self.lms.tool_lti13_login_url and self.lms.tool_lti13_launch_url):
            self.refuse(503, "DemoLMS.tool_lti13_login_url/launch_url are not set")

    def storage_target(self) -> str | None:
        # ?storage=off starts a launch without platform storage, as older LMSs do.
        return None if self.get_argument("storage", "") == "off" else "_parent"


class LTI13LaunchHandler(_LTI13LoginHandler):
    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        link_id = self.get_argument("link", "")
        assignment = self.get_argument("assignment", "").strip()
        if link_id:
            # A link made by deep linking launches what the tool put in it.
            link = self.lms.course_link(link_id, course, "1.3")
            if link is None:
                return self.refuse(404, "no such link in this course")
            placement = {
                "resource_link_id": link.id,
                "target_link_uri": link.url,
                "custom": link.custom,
                "ags": self.lms.ags_claim(course, lineitem=link.lineitem),
            }
        elif assignment:
            # An assignment's link comes with its column, as in Canvas.
            resource_link_id = f"{course}-{assignment}"
            lineitem = self.lms.link_lineitem(course, resource_link_id, assignment)
            placement = {
                "resource_link_id": resource_link_id,
                "custom": {"assignment": assignment},
                "ags": self.lms.ags_claim(course, lineitem=lineitem),
            }
        else:
            placement = {}
        login_url, params = self.lms.initiate_lti13(
            user_id=user,
            roles=roles,
            context_id=course,
            name=self.get_argument("name", None),
            email=self.get_argument("email", None),
            storage_target=self.storage_target(),
            **placement,
        )
        self.finish(autosubmit_form_html(login_url, params, title="Opening LearnHub…"))


class DeepLinkingHandler(_LTI13LoginHandler):
    """GET /deeplink13: a deep-linking request, as an LMS's "add content from a tool" button."""

    def get(self) -> None:
        launch = self.launch_arguments()
        if launch is None:
            return
        user, roles, course = launch
        login_url, params = self.lms.initiate_deep_linking(
            user_id=user, roles=roles, context_id=course, storage_target=self.storage_target()
        )
        self.finish(autosubmit_form_html(login_url, params, title="Opening LearnHub…"))


class _SelectionReturnHandler(LMSHandler):
    """Where the tool answers a request to pick content. Nothing is made unless the whole
    answer checks out; a refusal is kept in `lms.refusals` under `route`."""

    route: str

    def refuse_answer(self, refused: Exception) -> None:
        self.lms.refusals.append((self.route, 400, str(refused)))
        self.refuse(400, str(refused))

    def show_links(self, context_id: str, links: list[CourseLink], *, msg, errormsg) -> None:
        """The answer page: the links made, and the tool's own messages to the instructor."""
        notes = [
            prefix + message
            for message, prefix in ((msg, "The tool says: "), (errormsg, "The tool reports: "))
            if isinstance(message, str) and message
        ]
        self.finish(
            deep_link_return_html(
                course_title=self.lms.course_title_for(context_id), links=links, notes=notes
            )
        )


class DeepLinkReturnHandler(_SelectionReturnHandler):
    """POST /deep_link_return: the tool's LtiDeepLinkingResponse, form field JWT."""

    route = "deep_link_return"

    async def post(self) -> None:
        lms = self.lms
        token = self.get_body_argument("JWT", "")
        try:
            if not token:
                raise DeepLinkRefused("the form field JWT is required")
            claims = verify_deep_linking_response(
                token,
                jwks=await lms.tool_jwks(),
                platform=lms.platform,
                nonce_unused=lms.use_deep_link_nonce,
            )
            request = lms.redeem_deep_link(claims.get(DL_DATA_CLAIM))
            items = deep_link_items(
                claims.get(DL_CONTENT_ITEMS_CLAIM),
                accept_multiple=request.accept_multiple,
                tool_origins=lms.tool_origins(),
            )
        except (DeepLinkRefused, ToolKeysUnavailable) as refused:
            return self.refuse_answer(refused)
        links = lms.add_links(request.context_id, items)
        lms.deep_link_responses.append(claims)
        self.show_links(
            request.context_id,
            links,
            msg=claims.get(DL_CLAIM + "msg"),
            errormsg=claims.get(DL_CLAIM + "errormsg"),
        )


class ContentItemReturnHandler(_SelectionReturnHandler):
    """POST /content_item_return: the tool's ContentItemSelection, a form the tool signed
    with this consumer's key and secret."""

    route = "content_item_return"

    def post(self) -> None:
        lms = self.lms
        try:
            fields = verify_content_item_selection(
                self.all_arguments(),
                url=lms.content_item_return_url,
                consumer_key=lms.consumer_key,
                secret=lms.consumer_secret,
                nonce_unused=lms.use_oauth_nonce,
            )
            request = lms.content_item_requests.redeem(fields.get("data", ""))
            items = content_item_links(
                fields.get("content_items"),
                accept_multiple=request.accept_multiple,
                tool_origins=lms.tool_origins(),
            )
        except DeepLinkRefused as refused:
            return self.refuse_answer(refused)
        links = lms.add_links(request.context_id, items, lti_version="1.1")
        lms.content_item_responses.append(fields)
        self.show_links(
            request.context_id,
            links,
            msg=fields.get("lti_msg"),
            errormsg=fields.get("lti_errormsg"),
        )


class AuthorizationHandler(LMSHandler):
    """The OIDC authorization endpoint: answers the tool's login with a signed id_token."""

    def get(self) -> None:
        self._authorize()

    def post(self) -> None:
        self._authorize()

    def _authorize(self) -> None:
        arguments = self.all_arguments()
        problem = auth_request_problem(
            arguments,
            client_id=self.lms.platform.client_id,
            redirect_uri=self.lms.tool_lti13_launch_url,
        )
        args = {name: values[0] for name, values in arguments.items()}
        if problem is None:
            try:
                pending = self.lms.redeem_message_hint(
                    args["lti_message_hint"], login_hint=args["login_hint"]
                )
            except LaunchRefused as refused:
                problem = ("invalid_request", str(refused))
        if problem is not None:
            self.set_status(400)
            self.finish({"error": problem[0], "error_description": problem[1]})
            return
        id_token = sign_id_token(
            self.lms.platform, pending.claims(self.lms.platform, nonce=args["nonce"])
        )
        fields = {"id_token": id_token, "state": args["state"]}
        self.finish(
            autosubmit_form_html(args["redirect_uri"], fields, title="Signing in to LearnHub…")
        )


class JWKSHandler(LMSHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lms.platform.jwks()))


class OutcomeServiceHandler(LMSHandler):
    """POST /outcomes: LTI 1.1 Basic Outcomes, signed with the consumer secret and body hash."""

    def answer(self, status: int, **pox) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/xml; charset=utf-8")
        self.finish(pox_response_xml(**pox))

    def post(self) -> None:
        lms = self.lms
        body = self.request.body
        problem = outcome_request_problem(
            url=lms.url + self.request.uri,
            authorization=self.request.headers.get("Authorization"),
            body=body,
            consumer_key=lms.consumer_key,
            secret=lms.consumer_secret,
            nonce_unused=lms.use_oauth_nonce,
        )
        if problem is not None:
            lms.refusals.append(("outcomes", 401, problem))
            self.answer(401, success=False, description=problem, message_ref="", operation="")
            return
        try:
            request = parse_outcome_request(body)
        except ValueError as e:
            lms.refusals.append(("outcomes", 400, str(e)))
            self.answer(400, success=False, description=str(e), message_ref="", operation="")
            return
        reply = {"message_ref": request.message_id, "operation": request.operation + "Request"}
        cell = lms.sourcedids.get(request.sourcedid)
        if cell is None:
            return self.answer(200, success=False, description="unknown sourcedId", **reply)
        if request.operation == "replaceResult":
            try:
                score = parse_outcome_score(request.score)
            except ValueError as e:
                lms.refusals.append(("outcomes", 200, str(e)))
                return self.answer(200, success=False, description=str(e), **reply)
            grade = OutcomeGrade(request.sourcedid, cell, score, request.message_id)
            lms.outcomes[request.sourcedid] = grade
            lms.outcome_requests.append(grade)
            description = f"Score for {request.sourcedid} is now {score:g}"
            return self.answer(200, success=True, description=description, **reply)
        if request.operation == "readResult":
            held = lms.outcomes.get(request.sourcedid)
            text = "" if held is None else f"{held.score:g}"
            result = (
                "<result><resultScore><language>en</language>"
                f"<textString>{text}</textString></resultScore></result>"
            )
            return self.answer(200, success=True, description="Result read", body=result, **reply)
        if request.operation == "deleteResult":
            lms.outcomes.pop(request.sourcedid, None)
            return self.answer(200, success=True, description="Result deleted", **reply)
        self.answer(
            200,
            success=False,
            description=f"{request.operation} is not supported",
            message_ref=request.message_id,
            operation=request.operation + "Request",
        )


class TokenHandler(LMSHandler):
    """POST /token: the client-credentials grant with a JWT assertion signed by the tool's key."""

    def refuse_token(self, refused: GradeRefused) -> None:
        self.lms.refusals.append(("token", refused.status, str(refused)))
        self.set_status(refused.status)
        self.finish({"error": refused.error, "error_description": str(refused)})

    async def post(self) -> None:
        lms = self.lms
        args = {k: self.get_body_argument(k, "") for k in self.request.body_arguments}
        try:
            if args.get("grant_type") != "client_credentials":
                raise GradeRefused(400, "grant_type must be client_credentials",
                                   "unsupported_grant_type")  # fmt: skip
            if args.get("client_assertion_type") != ASSERTION_TYPE:
                raise GradeRefused(400, f"client_assertion_type must be {ASSERTION_TYPE}")
            if not args.get("client_assertion"):
                raise GradeRefused(400, "client_assertion is required")
            try:
                jwks = await lms.tool_jwks()
            except ToolKeysUnavailable as e:
                raise GradeRefused(401, str(e), "invalid_client") from None
            verify_client_assertion(
                args["client_assertion"],
                jwks=jwks,
                client_id=lms.platform.client_id,
                token_url=lms.token_url,
                jti_unused=lms.use_jti,
            )
            requested = set(args.get("scope", "").split())
            granted = requested & TOKEN_SCOPES
            if not granted:
                raise GradeRefused(400, "none of the requested scopes is granted", "invalid_scope")
        except GradeRefused as refused:
            return self.refuse_token(refused)
        token = lms.issue_token(granted)
        self.finish({
            "access_token": token.value,
            "token_type": "Bearer",
            "expires_in": int(lms.token_lifetime),
            "scope": " ".join(sorted(granted)),
        })  # fmt: skip


class ServiceHandler(LMSHandler):
    """An LTI service endpoint (AGS, NRPS): a valid bearer token with one of the needed
    scopes, JSON in and out."""

    def authorize(self, *scopes: str) -> bool:
        header = self.request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        token = self.lms.bearer(value.strip()) if kind.lower() == "bearer" else None
        if token is None:
            self.refuse_json(GradeRefused(401, "a valid bearer token is required", "invalid_token"))
            return False
        if not token.scopes & set(scopes):
            self.refuse_json(
                GradeRefused(403, f"the token lacks the scope {scopes[0]}", "insufficient_scope")
            )
            return False
        return True

    def refuse_json(self, refused: GradeRefused) -> None:
        self.lms.refusals.append((self.request.path, refused.status, str(refused)))
        self.set_status(refused.status)
        if refused.status == 401:
            self.set_header("WWW-Authenticate", f'Bearer error="{refused.error}"')
        self.finish({"error": refused.error, "error_description": str(refused)})

    def json_body(self, content_type: str):
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() != content_type:
            raise GradeRefused(415, f"Content-Type must be {content_type}")
        try:
            return json.loads(self.request.body)
        except ValueError:
            raise GradeRefused(400, "the body is not JSON") from None

    def known_course(self, context: str) -> None:
        if context not in self.lms.members:
            raise GradeRefused(404, f"no course {context!r}", "not_found")

    def course_items(self, context: str) -> dict[str, dict]:
        self.known_course(context)
        return self.lms.lineitems.setdefault(context, {})

    def check_accept(self, media_type: str) -> None:
        """GradeRefused(406) unless the Accept header (if any) allows `media_type`."""
        header = self.request.headers.get("Accept", "*/*")
        accepted = {t.split(";")[0].strip() for t in header.split(",")}
        if not accepted & {media_type, media_type.split("/")[0] + "/*", "*/*"}:
            raise GradeRefused(406, f"Accept must allow {media_type}", "not_acceptable")

    def count_argument(self, name: str, *, least: int = 0) -> int | None:
        """The query argument `name` as a whole number of at least `least`, None if absent."""
        value = self.get_query_argument(name, None)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or int(value) < least:
            raise GradeRefused(400, f"{name} must be a whole number of at least {least}")
        return int(value)

    def send_json(self, data, content_type: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.finish(json.dumps(data))


class LineItemsHandler(ServiceHandler):
    """GET and POST /api/lti/courses/<context>/lineitems: the course's grade columns."""

    def get(self, context: str) -> None:
        if not self.authorize(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY):
            return
        try:
            items = list(self.course_items(context).values())
        except GradeRefused as refused:
            return self.refuse_json(refused)
        for arg, key in (("resource_id", "resourceId"), ("resource_link_id", "resourceLinkId"),
                         ("tag", "tag")):  # fmt: skip
            wanted = self.get_query_argument(arg, None)
            if wanted is not None:
                items = [i for i in items if i.get(key) == wanted]
        self.send_json(items, LINEITEM_CONTAINER_TYPE)

    def post(self, context: str) -> None:
        if not self.authorize(SCOPE_LINEITEM):
            return
        try:
            items = self.course_items(context)
            item = validate_new_lineitem(self.json_body(LINEITEM_TYPE))
        except GradeRefused as refused:
            return self.refuse_json(refused)
        item["id"] = self.lms.new_lineitem_id(context)
        items[item["id"]] = item
        self.lms.lineitem_posts.append(dict(item))
        self.send_json(item, LINEITEM_TYPE, status=201)


class LineItemHandler(ServiceHandler):
    """GET and DELETE one line item."""

    def item(self, context: str, number: str) -> dict:
        item_id = f"{self.lms.lineitems_url(context)}/{number}"
        item = self.course_items(context).get(item_id)
        if item is None:
            raise GradeRefused(404, f"no line item {number} in course {context!r}", "not_found")
        return item

    def get(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY):
            return
        try:
            self.send_json(self.item(context, number), LINEITEM_TYPE)
        except GradeRefused as refused:
            self.refuse_json(refused)

    def delete(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_LINEITEM):
            return
        try:
            item = self.item(context, number)
        except GradeRefused as refused:
            return self.refuse_json(refused)
        del self.lms.lineitems[context][item["id"]]
        self.lms.scores = {k: v for k, v in self.lms.scores.items() if k[0] != item["id"]}
        self.set_status(204)
        self.finish()


class ScoresHandler(LineItemHandler):
    """POST a learner's score to a line item; an older timestamp than the held one is refused."""

    def get(self, context: str, number: str) -> None:
        raise tornado.web.HTTPError(405)

    def delete(self, context: str, number: str) -> None:
        raise tornado.web.HTTPError(405)

    def post(self, context: str, number: str) -> None:
        if not self.authorize(SCOPE_SCORE):
            return
        try:
            item = self.item(context, number)
            score = validate_score(self.json_body(SCORE_TYPE), self.lms.members.get(context, ()))
            key = (item["id"], score["userId"])
            held = self.lms.scores.get(key)
            if held and parse_iso_timestamp(held["timestamp"]) > parse_iso_timestamp(
                score["timestamp"]
            ):
                raise GradeRefused(409, "a score with a later timestamp is already held",
                                   "conflict")  # fmt: skip
        except GradeRefused as refused:
            return self.refuse_json(refused)
        score["received"] = datetime.datetime.now(datetime.UTC).isoformat()
        self.lms.scores[key] = score
        self.lms.score_posts.append({**score, "lineitem": item["id"]})
        self.send_json({"resultUrl": f"{item['id']}/results/{quote(score['userId'])}"},
                       "application/json")  # fmt: skip


class MembershipsHandler(ServiceHandler):
    """GET /api/lti/courses/<context>/memberships: NRPS 2.0's membership container.

    `limit` pages through the members by user id, a Link rel="next" naming the next page;
    the last page's rel="differences" link asks, with `since`, for what changes after it.
    """

    def get(self, context: str) -> None:
        if not self.authorize(SCOPE_CONTEXT_MEMBERSHIP_READONLY):
            return
        lms = self.lms
        try:
            self.known_course(context)
            self.check_accept(MEMBERSHIP_CONTAINER_TYPE)
            since = self.count_argument("since")
            limit = self.count_argument("limit", least=1)
            offset = self.count_argument("offset") or 0
        except GradeRefused as refused:
            return self.refuse_json(refused)
        members = lms.memberships(context, since)
        end = len(members) if limit is None else min(offset + limit, len(members))
        if end < len(members):
            paging = {"since": since, "limit": limit, "offset": end}
            query, rel = {k: v for k, v in paging.items() if v is not None}, "next"
        else:
            query, rel = {"since": lms.roster_sequence(context)}, "differences"
        self.set_header("Link", f'<{lms.memberships_url(context)}?{urlencode(query)}>; rel="{rel}"')
        request_url = lms.url + self.request.uri
        lms.membership_requests.append(request_url)
        self.send_json(
            {
                "id": request_url,
                "context": {"id": context, "title": lms.course_title_for(context)},
                "members": [m.membership() for m in members[offset:end]],
            },
            MEMBERSHIP_CONTAINER_TYPE,
        )


class GradebookHandler(LMSHandler):
    def get(self) -> None:
        self.finish(gradebook_html(self.lms.gradebook()))


class GradebookJSONHandler(LMSHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lms.gradebook()))
