"""LTI 1.1 Basic Outcomes: the replaceResult message, its OAuth signature, the LMS's answer."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

from oauthlib.oauth1.rfc5849 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

POX_NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
POX_CONTENT_TYPE = "application/xml"


def format_score(score_fraction: float) -> str:
    """The resultScore text: a decimal in 0.0-1.0 with at most six places, e.g. "0.85", "1.0"."""
    if not isinstance(score_fraction, int | float) or math.isnan(score_fraction):
        raise ValueError(f"score must be a number between 0.0 and 1.0, not {score_fraction!r}")
    if not 0.0 <= score_fraction <= 1.0:
        raise ValueError(f"score must be between 0.0 and 1.0, not {score_fraction!r}")
    text = f"{score_fraction:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def build_replace_result_xml(sourcedid: str, score_fraction: float, message_id: str) -> str:
    """A replaceResultRequest POX envelope, as LTI 1.1 Basic Outcomes defines it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeRequest xmlns="{POX_NS}">'
        "<imsx_POXHeader><imsx_POXRequestHeaderInfo>"
        "<imsx_version>V1.0</imsx_version>"
        f"<imsx_messageIdentifier>{escape(message_id)}</imsx_messageIdentifier>"
        "</imsx_POXRequestHeaderInfo></imsx_POXHeader>"
        "<imsx_POXBody><replaceResultRequest><resultRecord>"
        f"<sourcedGUID><sourcedId>{escape(sourcedid)}</sourcedId></sourcedGUID>"
        "<result><resultScore><language>en</language>"
        f"<textString>{format_score(score_fraction)}</textString>"
        "</resultScore></result>"
        "</resultRecord></replaceResultRequest></imsx_POXBody>"
        "</imsx_POXEnvelopeRequest>"
    )


def sign_outcome_request(url: str, consumer_key: str, secret: str, body: str) -> dict[str, str]:
    """Headers for POSTing `body` to an outcome service: OAuth 1.0a HMAC-SHA1 with body hash.

    oauthlib adds oauth_body_hash for any body that is not form-encoded, which is
    what the LTI 1.1 outcomes spec requires.
    """
    client = Client(
        consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
    )
    _, headers, _ = client.sign(
        url, http_method="POST", body=body, headers={"Content-Type": POX_CONTENT_TYPE}
    )
    return dict(headers)


@dataclass(frozen=True)
class PoxResponse:
    """What an outcome service answered: imsx_codeMajor, its description, the message it answers."""

    code_major: str
    description: str
    message_ref: str

    @property
    def success(self) -> bool:
        return self.code_major == "success"


def _text(root: ET.Element, name: str) -> str:
    found = root.find(f".//{{{POX_NS}}}{name}")
    if found is None:
        found = root.find(f".//{name}")  # some LMSs answer without the namespace
    return (found.text or "").strip() if found is not None else ""


def parse_pox_response(body: bytes | str) -> PoxResponse:
    """The status of an imsx_POXEnvelopeResponse; ValueError if it is not one."""
    try:
        # The LMS is a registered peer; Python's expat (>= 2.4.1) refuses entity
        # expansion attacks and ElementTree never fetches external entities.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as e:
        raise ValueError(f"the LMS answered with something that is not XML ({e})") from None
    code_major = _text(root, "imsx_codeMajor")
    if not code_major:
        raise ValueError("the LMS answer has no imsx_codeMajor: not an outcomes response")
    return PoxResponse(
        code_major, _text(root, "imsx_description"), _text(root, "imsx_messageRefIdentifier")
    )
