"""Names from the LTI 1.1 specification."""

LAUNCH_MESSAGE_TYPE = "basic-lti-launch-request"
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
    "resource_link_id",
)
