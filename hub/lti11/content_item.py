"""LTI 1.1 Content-Item selection (IMS Content-Item Message 1.0): the LTI 1.1 way an LMS
(Moodle, Canvas) lets an instructor pick a tool's content.

A `ContentItemSelectionRequest`, signed like a launch, opens the assignment picker
(picker_pages.py); the answer is a `ContentItemSelection` form signed with the consumer's
secret for the request's `content_item_return_url`, whose content items are LTI links
with the custom parameter `assignment=<name>` and a line item worth the assignment's
points. Everything here is pure.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client

from ..assignment_picker import PickerState, added_message, link_text, offered
from ..errors import LaunchError
from .constants import CONTENT_ITEM_RESPONSE

LTI_LINK_MEDIA_TYPE = "application/vnd.ims.lti.v1.ltilink"
CONTEXT = "http://purl.imsglobal.org/ctx/lti/v1/ContentItem"
# What accept_media_types may say for LearnHub's links to be accepted.
_ACCEPTED_AS_LINKS = {LTI_LINK_MEDIA_TYPE, "application/*", "*/*"}


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def check_request(values: dict[str, str]) -> None:
    """The fields of a signed ContentItemSelectionRequest that LearnHub's answer needs."""
    return_url = values.get("content_item_return_url", "")
    if urlsplit(return_url).scheme not in ("https", "http"):
        raise LaunchError(400, "Content-Item request has no content_item_return_url")
    media_types = _listed(values.get("accept_media_types", ""))
    if not media_types:
        raise LaunchError(400, "Content-Item request has no accept_media_types")
    if not _ACCEPTED_AS_LINKS & set(media_types):
        raise LaunchError(
            400,
            f"This LMS placement does not accept LTI links (accept_media_types "
            f"{', '.join(media_types)!r}): add LearnHub assignments where links are accepted",
        )
    if not _listed(values.get("accept_presentation_document_targets", "")):
        raise LaunchError(400, "Content-Item request has no accept_presentation_document_targets")


def return_origins(consumer) -> set[str] | None:
    """Where a consumer's answer may go: the origin registered to frame LearnHub; None
    (anywhere the signed request says) for a consumer registered without one."""
    return {consumer.frame_origin} if consumer.frame_origin else None


def picker_state(values: dict[str, str], *, consumer_key: str, course, username: str,
                 catalog: list[dict]) -> PickerState:  # fmt: skip
    """The state of the picker that answers the validated request `values`."""
    return PickerState(
        lti_version="1.1",
        return_url=values["content_item_return_url"],
        # Content-Item's defaults: one item unless accept_multiple says otherwise.
        accept_multiple=values.get("accept_multiple", "").lower() == "true",
        accept_lineitem=True,
        course_id=course.id,
        course_title=course.title,
        username=username,
        recipient={"consumer_key": consumer_key},
        offered=offered(catalog),
        data=values.get("data"),
        has_data="data" in values,
    )


def link_item(name: str, entry: dict, *, launch_url: str) -> dict:
    """The LTI link that opens assignment `name`, with a column worth its points."""
    item = {
        "@type": "LtiLinkItem",
        "mediaType": LTI_LINK_MEDIA_TYPE,
        "title": entry["title"],
        "text": link_text(name, entry),
        "url": launch_url,
        "custom": {"assignment": name},
    }
    if entry["points"] > 0:
        item["lineItem"] = {
            "@type": "LineItem",
            "label": entry["title"],
            "reportingMethod": "res:totalScore",
            "assignedActivity": {"@id": f"{launch_url}#{name}", "activityId": name},
            "scoreConstraints": {
                "@type": "NumericLimits",
                "normalMaximum": entry["points"],
                "totalMaximum": entry["points"],
            },
        }
    return item


def selection_fields(state: PickerState, chosen: list[str], *, launch_url: str) -> dict:
    """The unsigned fields of the ContentItemSelection answering `state`."""
    graph = [link_item(name, state.offered[name], launch_url=launch_url) for name in chosen]
    fields = {
        "lti_message_type": CONTENT_ITEM_RESPONSE,
        "lti_version": "LTI-1p0",
        "content_items": json.dumps({"@context": CONTEXT, "@graph": graph}),
        "lti_msg": added_message(len(graph)),
    }
    if state.has_data:
        fields["data"] = state.data
    return fields


def sign(return_url: str, fields: dict[str, str], *, consumer_key: str, secret: str,
         nonce: str | None = None, timestamp: str | None = None) -> dict[str, str]:  # fmt: skip
    """`fields` with the OAuth 1.0a HMAC-SHA1 body signature of the consumer's secret for a
    POST to `return_url`, as LTI 1.1 launches are signed the other way."""
    client = Client(
        consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        # LTI 1.1 has no OAuth callback; its spec and every consumer send this value.
        callback_uri="about:blank",
        nonce=nonce,
        timestamp=timestamp,
    )
    _, _, body = client.sign(
        return_url,
        http_method="POST",
        body=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return dict(parse_qsl(body, keep_blank_values=True))


def answer_fields(state: PickerState, chosen: list[str], *, launch_url: str,
                  secret: str) -> dict[str, str]:  # fmt: skip
    """The signed form the browser posts to content_item_return_url."""
    return sign(
        state.return_url,
        selection_fields(state, chosen, launch_url=launch_url),
        consumer_key=state.recipient["consumer_key"],
        secret=secret,
    )
