"""The LTI 1.1 launch endpoint: basic launches, and Content-Item selection requests."""

from __future__ import annotations

from ..assignment_picker import check_return_url
from ..identity import (
    Course,
    Identity,
    LinkError,
    course_roles,
    link_assignment,
    split_lti11_roles,
)
from ..picker_pages import PickerPage
from . import content_item
from .constants import CONTENT_ITEM_REQUEST
from .constants import LAUNCH_PATH as LAUNCH_PATH
from .validator import validate_launch


def identity_from_launch(values: dict[str, str], consumer_key: str, course_id_for) -> Identity:
    """What a validated LTI 1.1 launch says about the person and the course."""
    platform = f"lti11:{consumer_key}"
    course = None
    if values.get("context_id"):
        context_id = values["context_id"]
        course = Course(
            id=course_id_for(platform, context_id),
            platform=platform,
            context_id=context_id,
            title=values.get("context_title") or values.get("context_label") or context_id,
        )
    name = values.get("lis_person_name_full") or " ".join(
        v for v in (values.get("lis_person_name_given"), values.get("lis_person_name_family")) if v
    )
    launch = {
        key: values[key]
        for key in (
            "resource_link_id",
            "resource_link_title",
            "lis_outcome_service_url",
            "lis_result_sourcedid",
            "launch_presentation_return_url",
        )
        if values.get(key)
    }
    # Outcomes are signed with this consumer's secret.
    launch["consumer_key"] = consumer_key
    return Identity(
        platform=platform,
        lms_user_id=values["user_id"],
        roles=course_roles(split_lti11_roles(values.get("roles", ""))),
        course=course,
        name=name or None,
        email=values.get("lis_person_contact_email_primary") or None,
        lti_version="1.1",
        launch_claims=launch,
        # LTI 1.1 sends a link's custom parameters as custom_<name>.
        assignment=link_assignment(values.get("custom_assignment")),
    )


class LTI11LaunchHandler(PickerPage):
    """POST /hub/lti11/launch: a basic launch signed with the consumer's shared secret, or a
    Content-Item selection request signed the same way, which opens the assignment picker."""

    async def post(self):
        learnhub = self.authenticator
        params = [
            (key, value.decode("utf-8", "replace"))
            for arguments in (self.request.query_arguments, self.request.body_arguments)
            for key, values in arguments.items()
            for value in values
        ]
        values = validate_launch(
            method="POST",
            url=self.public_url_for(LAUNCH_PATH),
            params=params,
            find_consumer=learnhub.store.get_consumer,
            use_nonce=lambda key, nonce, ts, now: learnhub.store.use_nonce(
                key, nonce, ts, now=now, window=learnhub.timestamp_window
            ),
            window=learnhub.timestamp_window,
        )
        try:
            identity = identity_from_launch(
                values, values["oauth_consumer_key"], learnhub.course_id_for
            )
        except LinkError as e:
            self.fail(400, str(e))
        if values["lti_message_type"] == CONTENT_ITEM_REQUEST:
            await self.open_content_item_picker(values, identity)
            return
        await self.start_session(identity)

    async def open_content_item_picker(self, values: dict[str, str], identity: Identity) -> None:
        """A Content-Item request: the course's staff pick assignments to link. The answer
        goes only to the origin the consumer was registered to frame LearnHub from, when it
        was (checked before anything is stored)."""
        content_item.check_request(values)
        consumer = self.authenticator.store.get_consumer(values["oauth_consumer_key"])
        allowed = content_item.return_origins(consumer)
        if allowed is not None:
            check_return_url(values["content_item_return_url"], allowed)
        await self.open_picker(
            identity,
            lambda username, catalog: content_item.picker_state(
                values, consumer_key=consumer.key, course=identity.course, username=username,
                catalog=catalog,
            ),
        )  # fmt: skip
