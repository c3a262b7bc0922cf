"""Names from the LTI 1.1 specification, and where LearnHub takes LTI 1.1 launches."""

LAUNCH_PATH = "lti11/launch"

LAUNCH_MESSAGE_TYPE = "basic-lti-launch-request"
# Content-Item Message 1.0: the LMS asks for content to link, the tool answers with it.
CONTENT_ITEM_REQUEST = "ContentItemSelectionRequest"
CONTENT_ITEM_RESPONSE = "ContentItemSelection"
MESSAGE_TYPES = {LAUNCH_MESSAGE_TYPE, CONTENT_ITEM_REQUEST}
LTI_VERSIONS = {"LTI-1p0", "LTI-1p1", "LTI-1p2"}
SIGNATURE_METHOD = "HMAC-SHA1"
REQUIRED_PARAMS = (
    "oauth_consumer_key",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "lti_message_type",
    "lti_version",
)
