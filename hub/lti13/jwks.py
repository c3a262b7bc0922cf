"""Platform public keys: fetched from the platform's JWKS URL, cached, refreshed on a new kid."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..errors import LaunchError

# An unknown kid may mean the platform rotated its key, so it triggers a refetch; but at
# most this often per JWKS URL, or forged tokens with random kids would hammer the LMS.
MIN_REFRESH_INTERVAL = 2.0


class PlatformKeys:
    """A per-process cache of each platform's JWKS."""

    def __init__(self, lifetime: float = 3600.0, timeout: float = 10.0):
        self.lifetime = lifetime
        self.timeout = timeout
        self._cache: dict[str, tuple[float, dict[str, dict]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _fetch(self, url: str) -> dict[str, dict]:
        try:
            response = await AsyncHTTPClient().fetch(
                url, request_timeout=self.timeout, headers={"Accept": "application/json"}
            )
            document = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError) as e:
            raise LaunchError(
                502, f"The platform's public keys could not be fetched from {url}: {e}"
            ) from None
        keys = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if isinstance(jwk, dict) and jwk.get("kid") and jwk.get("kty") == "RSA":
                keys[jwk["kid"]] = jwk
        self._cache[url] = (time.monotonic(), keys)
        return keys

    async def key(self, jwks_url: str, kid: str):
        """The public key for kid, refetching the JWKS when it is stale or lacks kid."""
        lock = self._locks.setdefault(jwks_url, asyncio.Lock())
        async with lock:
            fetched, keys = self._cache.get(jwks_url, (0.0, {}))
            age = time.monotonic() - fetched
            if age > self.lifetime or (kid not in keys and age > MIN_REFRESH_INTERVAL):
                keys = await self._fetch(jwks_url)
        if kid not in keys:
            raise LaunchError(401, f"id_token kid {kid!r} is not in the platform's JWKS")
        return jwt.algorithms.RSAAlgorithm.from_jwk(keys[kid])
