"""Keys derived from the crypt key: one per purpose, the same as every earlier release's."""

import pytest

from learnhub.keys import analytics_key, auth_state_key, derive_key, store_key
from learnhub.store import Cipher

CRYPT_KEY = bytes(range(32))


# Known answers: a changed derivation would make stored auth state, LTI secrets and the
# day's learner hashes unreadable, so these values never change.
@pytest.mark.parametrize(
    ("derive", "expected"),
    [
        (auth_state_key, "b46632a8c96429ffc1f04a92f6510a0fe45541f831316b0809def632a0a81bfb"),
        (analytics_key, "a01f5704b5db2f03da5cadf26da1424187e86c570d1762a69ee5a0cdad500f59"),
        (store_key, "951d36721f2906376221ac4ea88f27165399a9329ca297eaf3f5ba3f0b41173a"),
    ],
    ids=["auth-state", "analytics", "store"],
)  # fmt: skip
def test_derived_keys_are_unchanged(derive, expected):
    assert derive(CRYPT_KEY).hex() == expected


def test_purposes_get_different_keys_and_the_store_uses_its_own():
    keys = {derive_key(CRYPT_KEY, info) for info in (b"a", b"b")}
    assert len(keys) == 2
    assert len(derive_key(CRYPT_KEY, b"a")) == 32
    token = Cipher(CRYPT_KEY).encrypt("secret")
    assert Cipher(CRYPT_KEY).decrypt(token) == "secret"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Cipher(bytes(32)).decrypt(token)
