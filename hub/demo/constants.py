"""The LTI vocabulary the demo LMS speaks: claim names, message and media types, scopes, roles."""

from __future__ import annotations

from enum import StrEnum

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_ENDPOINT_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/"
NRPS_CLAIM = _NRPS + "claim/namesroleservice"
SCOPE_CONTEXT_MEMBERSHIP_READONLY = _NRPS + "scope/contextmembership.readonly"
MEMBERSHIP_CONTAINER_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
# An NRPS member's enrolment; a differences answer also reports "Deleted" for one dropped.
MEMBER_STATUSES = ("Active", "Inactive")
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS_CLAIM = DL_CLAIM + "deep_linking_settings"
DL_CONTENT_ITEMS_CLAIM = DL_CLAIM + "content_items"
DL_DATA_CLAIM = DL_CLAIM + "data"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
# LTI 1.1's deep linking: the Content-Item Message 1.0 and the one media type it offers.
CONTENT_ITEM_REQUEST = "ContentItemSelectionRequest"
CONTENT_ITEM_SELECTION = "ContentItemSelection"
LTI_LINK_MEDIA_TYPE = "application/vnd.ims.lti.v1.ltilink"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"


class Role(StrEnum):
    """LTI context roles: the value is the LTI 1.3 URI, `.short` the LTI 1.1 name."""

    LEARNER = f"{_MEMBERSHIP}#Learner"
    INSTRUCTOR = f"{_MEMBERSHIP}#Instructor"
    TEACHING_ASSISTANT = f"{_MEMBERSHIP}/Instructor#TeachingAssistant"
    CONTENT_DEVELOPER = f"{_MEMBERSHIP}#ContentDeveloper"
    ADMINISTRATOR = f"{_MEMBERSHIP}#Administrator"

    @property
    def short(self) -> str:
        return self.value.rsplit("#", 1)[1]


POX_NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = AGS_SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = AGS_SCOPE + "lineitem.readonly"
SCOPE_RESULT_READONLY = AGS_SCOPE + "result.readonly"
SCOPE_SCORE = AGS_SCOPE + "score"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
