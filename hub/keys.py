"""Keys derived from the crypt key, one per purpose, so no key serves two (HKDF-SHA256)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The HKDF info of each purpose; changing one makes what was stored with it unreadable.
AUTH_STATE_INFO = b"jupyterhub-auth-state"
ANALYTICS_INFO = b"learnhub-analytics-learners"
STORE_INFO = b"learnhub-store"
DEEP_LINKING_INFO = b"learnhub-deep-linking-picker"


def derive_key(crypt_key: bytes, info: bytes) -> bytes:
    """A 32-byte key for the purpose `info`, derived from the installation's crypt key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(crypt_key)


def auth_state_key(crypt_key: bytes) -> bytes:
    """The key JupyterHub encrypts auth state with."""
    return derive_key(crypt_key, AUTH_STATE_INFO)


def analytics_key(crypt_key: bytes) -> bytes:
    """The key of the daily learner hashes."""
    return derive_key(crypt_key, ANALYTICS_INFO)


def store_key(crypt_key: bytes) -> bytes:
    """The key LearnHub's store encrypts its secrets and personal fields with."""
    return derive_key(crypt_key, STORE_INFO)


def deep_linking_key(crypt_key: bytes) -> bytes:
    """The key sealing a deep-linking picker's state into its page."""
    return derive_key(crypt_key, DEEP_LINKING_INFO)
