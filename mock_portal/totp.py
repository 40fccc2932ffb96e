"""Time-based one-time passwords (RFC 6238, HMAC-SHA1, 30 s steps, 6 digits), for citizens
whose second factor the mock's config gives a secret (``totp_secrets``), as an authenticator
app computes them.

>>> secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238's SHA-1 key, base32
>>> code_at(secret, 59, digits=8)
'94287082'
>>> verify(secret, code_at(secret, 1_000_000), 1_000_000 + 29)
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

STEP_S = 30
DIGITS = 6
# Steps either side of now that still verify: a client's clock a little off, or a code typed
# as its step ended (RFC 6238 section 5.2 recommends at most one).
WINDOW_STEPS = 1


def decode_secret(secret: str) -> bytes:
    """A base32 secret as authenticator apps show it (spaces and padding optional)."""
    text = secret.replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def code_at(secret: str, unix_s: float, *, digits: int = DIGITS) -> str:
    counter = int(unix_s // STEP_S)
    mac = hmac.new(decode_secret(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def verify(secret: str, code: str, unix_s: float) -> bool:
    """Whether ``code`` is the secret's code now or within :data:`WINDOW_STEPS` steps
    (compared in constant time)."""
    candidates = (
        code_at(secret, unix_s + k * STEP_S) for k in range(-WINDOW_STEPS, WINDOW_STEPS + 1)
    )
    return any(hmac.compare_digest(c.encode(), code.encode()) for c in candidates)
