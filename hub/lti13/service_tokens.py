"""Access tokens of LTI Advantage services (Assignment and Grade Services, Names and Role
Provisioning Services): an OAuth 2 client-credentials grant for a JWT the tool signs
(1EdTech Security Framework 4.1), cached until shortly before it expires."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization

from .keys import ToolKeys

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The 1EdTech Security Framework caps a client assertion's life at five minutes.
MAX_ASSERTION_LIFETIME = 300

# A token is renewed this many seconds before the platform said it expires.
TOKEN_MARGIN = 60
WHAT = "the access token request"  # how errors name the request

# fetch(url, what, **HTTPRequest arguments) -> the answer, whatever its status.
Fetch = Callable[..., Awaitable]


def build_client_assertion(
    client_id: str,
    token_url: str,
    kid: str,
    private_key,
    *,
    now: float | None = None,
    lifetime: int = MAX_ASSERTION_LIFETIME,
    jti: str | None = None,
) -> str:
    """The RS256 JWT with which the tool authenticates to the platform's token endpoint.

    `private_key` is a PEM string or a cryptography private key.
    """
    if not 0 < lifetime <= MAX_ASSERTION_LIFETIME:
        raise ValueError(f"lifetime must be 1-{MAX_ASSERTION_LIFETIME} s, not {lifetime}")
    if isinstance(private_key, str | bytes):
        data = private_key.encode() if isinstance(private_key, str) else private_key
        private_key = serialization.load_pem_private_key(data, password=None)
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": jti or secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})


def token_request_body(assertion: str, scopes: Iterable[str]) -> str:
    """The form body of a client-credentials grant with a JWT client assertion."""
    return urlencode(
        {
            "grant_type": GRANT_TYPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(sorted(set(scopes))),
        }
    )


class TokenRefused(Exception):
    """The token endpoint gave no access token: `response` is its answer, and `detail` says
    what was wrong with an answer that was a success."""

    def __init__(self, response, detail: str | None = None):
        super().__init__(detail or f"the token endpoint answered {response.code}")
        self.response = response
        self.detail = detail


class ServiceTokens:
    """The tool's access tokens, one per (token endpoint, client id, scopes)."""

    def __init__(self, tool_keys: ToolKeys, *, clock: Callable[[], float] = time.time):
        self.tool_keys = tool_keys
        self.clock = clock
        self._cache: dict[tuple, tuple[str, float]] = {}

    async def get(
        self, fetch: Fetch, *, token_url: str, client_id: str, scopes: Iterable[str],
        renew: bool = False,
    ) -> str:  # fmt: skip
        """A token for `scopes`; `renew` asks a new one (the platform forgot the last)."""
        key = (token_url, client_id, tuple(sorted(set(scopes))))
        cached = self._cache.get(key)
        if cached and not renew and cached[1] > self.clock():
            return cached[0]
        self._cache.pop(key, None)
        kid, private_pem = self.tool_keys.signing_key()
        assertion = build_client_assertion(client_id, token_url, kid, private_pem)
        response = await fetch(
            token_url, WHAT, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"},
            body=token_request_body(assertion, key[2]),
        )  # fmt: skip
        if not 200 <= response.code < 300:
            raise TokenRefused(response)
        try:
            answer = json.loads(response.body)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise TokenRefused(
                response, "the LMS token endpoint answered without an access_token"
            ) from None
        self._cache[key] = (token, self.clock() + max(0.0, lifetime - TOKEN_MARGIN))
        return token
