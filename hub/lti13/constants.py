"""Claim names and values from LTI 1.3 Core and the 1EdTech Security Framework."""

# Where LearnHub takes LTI 1.3 launches (the redirect URI and target link URI).
LAUNCH_PATH = "lti13/launch"

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
TARGET_LINK_URI = LTI + "target_link_uri"
RESOURCE_LINK = LTI + "resource_link"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
CUSTOM = LTI + "custom"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

# LTI Deep Linking 2.0.
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS = DL + "deep_linking_settings"
DL_CONTENT_ITEMS = DL + "content_items"
DL_DATA = DL + "data"
DL_MESSAGE = DL + "msg"
RESOURCE_LINK_ITEM = "ltiResourceLink"

SUPPORTED_VERSION = "1.3.0"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
SUPPORTED_MESSAGE_TYPES = {RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST}
ALGORITHM = "RS256"

# How LearnHub introduces itself to an LMS (its registration JSON and Dynamic Registration).
TOOL_NAME = "LearnHub"
TOOL_DESCRIPTION = (
    "Jupyter notebooks with autograded assignments, without tracking and without "
    "third-party cookies."
)
# The claims about a person LearnHub asks for: who they are, and nothing more.
TOOL_CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")

# What the tool asks for when an LMS registers it (Assignment and Grade Services).
SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
]
