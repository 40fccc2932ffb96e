"""Signed tokens: JWT access tokens with one fixed algorithm, and sealed opaque blobs.

Access tokens are HS256 JWTs. The header is fixed, so ``alg: none`` and algorithm switching are
rejected by comparing the header segment, before anything is decoded. Signatures are compared
with :func:`hmac.compare_digest`. Sealed blobs (login challenges, authorization codes, refresh
tokens) carry their own state, so any worker can check them: ``base64url(json).base64url(mac)``
where the MAC covers a purpose string, so a blob made for one purpose is refused for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

KEY_ID = "portal-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    pad = -len(text) % 4
    return base64.urlsafe_b64decode(text + "=" * pad)


_HEADER = b64url(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": KEY_ID}))
_HEADER_PREFIX = _HEADER + "."


class Signer:
    """Signs and verifies with one secret shared by every mock worker.

    >>> s = Signer(b"k" * 32)
    >>> s.verify_jwt(s.sign_jwt({"sub": "citizen-1", "exp": 2**40}))["sub"]
    'citizen-1'
    >>> s.verify_jwt(s.sign_jwt({"sub": "x", "exp": 1}) + "x") is None
    True
    """

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 bytes")
        # Keyed once: a copy of it is an HMAC whose key pads are already hashed, which makes
        # each MAC about twice as fast as hmac.new(key, ...) and gives the same bytes.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def _mac(self, data: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(data)
        return b64url(mac.digest())

    def sign_jwt(self, claims: dict[str, Any]) -> str:
        signing_input = _HEADER_PREFIX + b64url(orjson.dumps(claims))
        return signing_input + "." + self._mac(signing_input.encode("ascii"))

    def verify_jwt(self, token: str) -> dict[str, Any] | None:
        """Claims of a well-signed token, or None. Expiry and revocation are the caller's.

        A token is ASCII; anything else is refused before the constant-time comparison,
        which raises on non-ASCII strings instead of answering False.
        """
        if not token.startswith(_HEADER_PREFIX) or not token.isascii():
            return None
        signing_input, dot, signature = token.rpartition(".")
        if not dot or signing_input.count(".") != 1:
            return None
        expected = self._mac(signing_input.encode("ascii"))
        if not hmac.compare_digest(expected, signature):
            return None
        return _decode_json(signing_input[len(_HEADER_PREFIX) :])

    def seal(self, purpose: str, payload: dict[str, Any]) -> str:
        body = b64url(orjson.dumps(payload))
        return body + "." + self._mac(f"{purpose}.{body}".encode("ascii"))

    def unseal(self, purpose: str, token: str) -> dict[str, Any] | None:
        if not token.isascii():
            return None
        body, dot, signature = token.partition(".")
        if not dot or "." in signature:
            return None
        expected = self._mac(f"{purpose}.{body}".encode("ascii"))
        if not hmac.compare_digest(expected, signature):
            return None
        return _decode_json(body)


def _decode_json(segment: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(b64url_decode(segment))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def s256(verifier: str) -> str:
    """The PKCE S256 transform (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())
