"""The tool's own RSA key pairs: created, rotated, published as a JWKS, used to sign."""

from __future__ import annotations

import json
import secrets
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..store import Store

# A retired key stays in the JWKS this long, so a platform that cached the old JWKS
# can still verify assertions signed just before the rotation.
RETIRED_KEY_GRACE = 7 * 24 * 3600


def new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_jwk(kid: str, private_pem: str) -> dict:
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


class ToolKeys:
    """Access to the tool key pairs stored (encrypted) in the platform database."""

    def __init__(self, store: Store):
        self.store = store

    def ensure(self) -> str:
        """Create the first key pair if there is none; return the signing kid."""
        keys = self.store.tool_keys()
        active = [k for k in keys if k.active]
        if active:
            return active[0].kid
        return self.rotate()

    def rotate(self) -> str:
        """Make a new signing key; the old one is published until its grace period ends."""
        kid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
        self.store.add_tool_key(kid, new_private_pem())
        self.store.drop_retired_keys(time.time() - RETIRED_KEY_GRACE)
        return kid

    def jwks(self) -> dict:
        keys = [
            public_jwk(k.kid, self.store.cipher.decrypt(k.private_pem_enc))
            for k in self.store.tool_keys()
            if k.active or (k.retired or 0) > time.time() - RETIRED_KEY_GRACE
        ]
        return {"keys": keys}

    def signing_key(self) -> tuple[str, str]:
        """(kid, private PEM) of the active key."""
        kid = self.ensure()
        key = next(k for k in self.store.tool_keys() if k.kid == kid)
        return kid, self.store.cipher.decrypt(key.private_pem_enc)
