"""Check an LTI 1.3 id_token as the 1EdTech Security Framework and LTI Core require."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import jwt

from ..errors import LaunchError
from . import constants as c


def check_header(id_token: str) -> str:
    """Return the kid of a well-formed RS256 token header, or refuse the token."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.DecodeError:
        raise LaunchError(400, "id_token is not a JSON Web Token") from None
    alg = header.get("alg")
    if alg != c.ALGORITHM:
        raise LaunchError(401, f"id_token must be signed with RS256, not {alg!r}")
    kid = header.get("kid")
    if not kid or not isinstance(kid, str):
        raise LaunchError(401, "id_token header has no kid")
    return kid


def _decode(id_token: str, key: Any, *, issuer: str, client_id: str, leeway: float) -> dict:
    try:
        return jwt.decode(
            id_token,
            key=key,
            algorithms=[c.ALGORITHM],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
        )
    except jwt.ExpiredSignatureError:
        raise LaunchError(401, "id_token has expired") from None
    except jwt.ImmatureSignatureError:
        raise LaunchError(401, "id_token is issued in the future (iat or nbf)") from None
    except jwt.InvalidAudienceError:
        raise LaunchError(401, "id_token aud does not include this tool's client id") from None
    except jwt.InvalidIssuerError:
        raise LaunchError(401, "id_token iss is not the platform's issuer") from None
    except jwt.MissingRequiredClaimError as e:
        raise LaunchError(400, f"id_token has no {e.claim} claim") from None
    except jwt.InvalidSignatureError:
        raise LaunchError(401, "id_token signature does not verify") from None
    except jwt.InvalidTokenError as e:
        raise LaunchError(401, f"id_token is invalid: {e}") from None


def check_claims(
    claims: dict, *, client_id: str, nonce: str, deployment_ids: list[str], target_link_uri: str
) -> None:
    """The LTI-specific checks on verified claims; raises LaunchError on the first failure."""
    aud = claims["aud"]
    audiences = aud if isinstance(aud, list) else [aud]
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise LaunchError(401, "id_token has several audiences and no azp claim")
    if azp is not None and azp != client_id:
        raise LaunchError(401, "id_token azp is not this tool's client id")
    if claims["nonce"] != nonce:
        raise LaunchError(401, "id_token nonce does not match the login request")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise LaunchError(400, "id_token has no sub claim")

    if c.VERSION not in claims:
        raise LaunchError(400, "id_token has no LTI version claim")
    if claims[c.VERSION] != c.SUPPORTED_VERSION:
        raise LaunchError(400, f"Unsupported LTI version {claims[c.VERSION]!r}: expected 1.3.0")
    message_type = claims.get(c.MESSAGE_TYPE)
    if message_type not in c.SUPPORTED_MESSAGE_TYPES:
        raise LaunchError(400, f"Unsupported LTI message type {message_type!r}")
    deployment_id = claims.get(c.DEPLOYMENT_ID)
    if not deployment_id:
        raise LaunchError(400, "id_token has no deployment_id claim")
    if deployment_id not in deployment_ids:
        raise LaunchError(403, f"Deployment {deployment_id!r} is not registered for this platform")
    if not isinstance(claims.get(c.ROLES), list):
        raise LaunchError(400, "id_token has no roles claim")
    claimed_target = claims.get(c.TARGET_LINK_URI)
    if message_type == c.DEEP_LINKING_REQUEST:
        check_deep_linking_settings(claims.get(c.DL_SETTINGS))
        # Deep Linking does not require the claim; one that is sent must still match.
        if claimed_target is not None and claimed_target != target_link_uri:
            raise LaunchError(400, "id_token target_link_uri differs from the login request's")
        return
    link = claims.get(c.RESOURCE_LINK)
    if not isinstance(link, dict) or not link.get("id"):
        raise LaunchError(400, "id_token has no resource_link id")
    if not claimed_target:
        raise LaunchError(400, "id_token has no target_link_uri claim")
    if claimed_target != target_link_uri:
        raise LaunchError(400, "id_token target_link_uri differs from the login request's")


def check_deep_linking_settings(settings) -> None:
    """The deep_linking_settings claim as Deep Linking 2.0 requires it, accepting what
    LearnHub answers with: LTI resource links."""
    if not isinstance(settings, dict):
        raise LaunchError(400, "Deep linking request has no deep_linking_settings claim")
    return_url = settings.get("deep_link_return_url")
    if not isinstance(return_url, str) or urlsplit(return_url).scheme not in ("https", "http"):
        raise LaunchError(400, "Deep linking request has no deep_link_return_url")
    accept_types = settings.get("accept_types")
    if not isinstance(accept_types, list):
        raise LaunchError(400, "Deep linking request has no accept_types")
    if c.RESOURCE_LINK_ITEM not in accept_types:
        raise LaunchError(
            400,
            "This LMS placement does not accept LTI resource links "
            f"(accept_types {accept_types!r}): add LearnHub assignments where links are accepted",
        )
    if not isinstance(settings.get("accept_presentation_document_targets"), list):
        raise LaunchError(400, "Deep linking request has no accept_presentation_document_targets")


async def validate_id_token(
    id_token: str,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    nonce: str,
    target_link_uri: str,
    public_key: Callable[[str], Awaitable[Any]],
    leeway: float = 30,
) -> dict:
    """Verify signature and claims; return the claims of a launch that may proceed."""
    kid = check_header(id_token)
    key = await public_key(kid)
    claims = _decode(id_token, key, issuer=issuer, client_id=client_id, leeway=leeway)
    check_claims(
        claims,
        client_id=client_id,
        nonce=nonce,
        deployment_ids=deployment_ids,
        target_link_uri=target_link_uri,
    )
    return claims
