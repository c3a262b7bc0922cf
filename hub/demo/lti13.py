"""The demo LMS as LTI 1.3 platform: keys, id_token claims, OIDC login and auth requests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import EllipsisType

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .constants import (
    AGS_ENDPOINT_CLAIM,
    COURSE_OFFERING,
    DEEP_LINKING_REQUEST,
    DL_SETTINGS_CLAIM,
    LTI_CLAIM,
    NRPS_CLAIM,
    RESOURCE_LINK_REQUEST,
)

ID_TOKEN_LIFETIME = 300


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _new_kid() -> str:
    return secrets.token_urlsafe(12)


@dataclass
class Platform:
    """An LTI 1.3 platform's identity toward one tool: issuer, client, deployment, signing key."""

    issuer: str
    client_id: str
    deployment_id: str
    kid: str = field(default_factory=_new_kid)
    private_key: rsa.RSAPrivateKey = field(default_factory=_new_rsa_key, repr=False)

    def public_jwk(self) -> dict:
        # PyJWT adds key_ops, which RFC 7517 says not to send beside "use".
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": jwk["n"],
            "e": jwk["e"],
        }

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk()]}

    def rotate_key(self) -> None:
        """Replace the key and kid at once: tokens signed before no longer verify."""
        self.private_key = _new_rsa_key()
        self.kid = _new_kid()


def id_token_claims(
    platform: Platform,
    *,
    nonce: str,
    user_id: str,
    roles: Iterable[str],
    context_id: str,
    context_title: str,
    target_link_uri: str,
    resource_link_id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    ags: Mapping | None = None,
    nrps: Mapping | None = None,
    custom: Mapping[str, str] | None = None,
    now: float | None = None,
    message_type: str = RESOURCE_LINK_REQUEST,
    deep_linking: Mapping | None = None,
) -> dict:
    """The claims of an LTI 1.3 id_token, as LTI core and Deep Linking 2.0 require them;
    `ags` and `nrps` are the grade and roster service claims, `custom` the link's custom
    parameters (e.g. {"assignment": "ps01"}).

    An LtiResourceLinkRequest names its `resource_link_id`; an LtiDeepLinkingRequest has no
    resource link but the `deep_linking` settings instead.
    """
    if message_type == DEEP_LINKING_REQUEST and deep_linking is None:
        raise ValueError("an LtiDeepLinkingRequest needs deep_linking settings")
    if message_type != DEEP_LINKING_REQUEST and resource_link_id is None:
        raise ValueError(f"an {message_type} needs a resource_link_id")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": platform.issuer,
        "aud": platform.client_id,
        "azp": platform.client_id,
        "sub": user_id,
        "exp": issued + ID_TOKEN_LIFETIME,
        "iat": issued,
        "nonce": nonce,
        LTI_CLAIM + "message_type": message_type,
        LTI_CLAIM + "version": "1.3.0",
        LTI_CLAIM + "deployment_id": platform.deployment_id,
        LTI_CLAIM + "target_link_uri": target_link_uri,
        LTI_CLAIM + "roles": [str(r) for r in roles],
        LTI_CLAIM + "context": {
            "id": context_id,
            "title": context_title,
            "type": [COURSE_OFFERING],
        },
    }
    if message_type == DEEP_LINKING_REQUEST:
        claims[DL_SETTINGS_CLAIM] = dict(deep_linking)
    else:
        claims[LTI_CLAIM + "resource_link"] = {"id": resource_link_id}
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    if ags is not None:
        claims[AGS_ENDPOINT_CLAIM] = dict(ags)
    if nrps is not None:
        claims[NRPS_CLAIM] = dict(nrps)
    if custom:
        claims[LTI_CLAIM + "custom"] = dict(custom)
    return claims


def sign_id_token(
    platform: Platform,
    claims: Mapping,
    *,
    kid: str | EllipsisType | None = ...,
    alg: str = "RS256",
    headers: Mapping | None = None,
    hmac_secret: str | bytes | None = None,
) -> str:
    """A signed id_token; also the broken ones a tool must refuse.

    `kid=...` uses the platform's kid, `kid=None` leaves it out, any other string
    names a key the JWKS lacks. `alg="none"` gives an unsigned token. `alg="HS256"`
    signs with `hmac_secret`, by default the public modulus: the key-confusion
    attack, where the attacker's "secret" is a value anyone can read in the JWKS.
    """
    header = {} if kid is None else {"kid": platform.kid if kid is ... else kid}
    header.update(headers or {})
    if alg == "none":
        key = None
    elif alg.startswith("HS"):
        key = hmac_secret if hmac_secret is not None else platform.public_jwk()["n"]
    else:
        key = platform.private_key
    return jwt.encode(dict(claims), key, algorithm=alg, headers=header)


def login_initiation_params(
    platform: Platform,
    *,
    login_hint: str,
    message_hint: str,
    target_link_uri: str,
    storage_target: str | None = None,
) -> dict[str, str]:
    """The third-party-initiated login request a platform sends to the tool's login URL."""
    params = {
        "iss": platform.issuer,
        "login_hint": login_hint,
        "target_link_uri": target_link_uri,
        "lti_message_hint": message_hint,
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
    }
    if storage_target is not None:
        params["lti_storage_target"] = storage_target
    return params


_AUTH_REQUIRED = ("nonce", "state", "login_hint", "lti_message_hint")


def repeated_parameter(arguments: Mapping[str, list[str]]) -> str | None:
    """The problem with a request that repeats a parameter (which value would count?), or None."""
    repeated = sorted(k for k, values in arguments.items() if len(values) > 1)
    return f"parameter {repeated[0]} is repeated" if repeated else None


def auth_request_problem(
    arguments: Mapping[str, list[str]], *, client_id: str, redirect_uri: str | None
) -> tuple[str, str] | None:
    """Why a platform refuses an OIDC authentication request, as (error, description), or None.

    `arguments` maps each parameter to all its values, so a repeated one is caught.
    """
    repeated = repeated_parameter(arguments)
    if repeated:
        return "invalid_request", repeated
    args = {k: values[0] for k, values in arguments.items()}
    if args.get("client_id") != client_id:
        return "unauthorized_client", f"unknown client_id {args.get('client_id', '')!r}"
    if redirect_uri is None or args.get("redirect_uri") != redirect_uri:
        return (
            "invalid_request",
            f"redirect_uri {args.get('redirect_uri', '')!r} is not the registered tool launch URL",
        )
    if args.get("response_type") != "id_token":
        return "unsupported_response_type", "response_type must be id_token"
    if "openid" not in args.get("scope", "").split():
        return "invalid_scope", "scope must include openid"
    if args.get("response_mode") != "form_post":
        return "invalid_request", "response_mode must be form_post"
    if args.get("prompt") != "none":
        return "invalid_request", "prompt must be none"
    for name in _AUTH_REQUIRED:
        if not args.get(name):
            return "invalid_request", f"{name} is required"
    return None


def tool_key(token: str, jwks: Mapping, *, name: str):
    """The public key in the tool's JWKS that signed `token`, by the kid of its RS256 header;
    ValueError naming the problem (and the token as `name`) otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise ValueError(f"{name} is not a JWT ({e})") from None
    if header.get("alg") != "RS256":
        raise ValueError(f"{name} must be signed with RS256")
    if not header.get("kid"):
        raise ValueError(f"{name} header has no kid")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    matching = [k for k in keys if k.get("kid") == header["kid"]]
    if not matching:
        raise ValueError(f"the tool's JWKS has no key {header['kid']!r}")
    return RSAAlgorithm.from_jwk(json.dumps(matching[0]))


class LaunchRefused(ValueError):
    """The platform will not answer this authentication request; the message says why."""


class ToolKeysUnavailable(LookupError):
    """The tool's JWKS cannot be had: its URL is unset, unreachable, or serves no key set."""


@dataclass
class PendingLaunch:
    """An LTI 1.3 launch the LMS has started and the tool has not yet redeemed."""

    user_id: str
    roles: tuple[str, ...]
    context_id: str
    context_title: str
    target_link_uri: str
    resource_link_id: str | None = None
    name: str | None = None
    email: str | None = None
    ags: Mapping | None = None
    nrps: Mapping | None = None
    custom: Mapping[str, str] | None = None
    message_type: str = RESOURCE_LINK_REQUEST
    deep_linking: Mapping | None = None

    def claims(self, platform: Platform, *, nonce: str) -> dict:
        return id_token_claims(
            platform,
            nonce=nonce,
            user_id=self.user_id,
            roles=self.roles,
            context_id=self.context_id,
            context_title=self.context_title,
            resource_link_id=self.resource_link_id,
            target_link_uri=self.target_link_uri,
            name=self.name,
            email=self.email,
            ags=self.ags,
            nrps=self.nrps,
            custom=self.custom,
            message_type=self.message_type,
            deep_linking=self.deep_linking,
        )
