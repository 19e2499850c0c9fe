"""Single-use recovery codes: the way back in after a lost phone.

Ten codes of 12 characters from a 31-letter alphabet without look-alikes
(59 bits each), shown once at enrollment and stored only as keyed hashes
(HMAC-SHA256 under a key from the secret store). The codes are random, not
chosen by people, so a slow password hash would add nothing but latency;
the key means a copy of the database alone cannot test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["CODE_COUNT", "hash_code", "new_codes", "normalize"]

CODE_COUNT = 10
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # 31: no 0/o, 1/l/i
_GROUPS = 3
_GROUP_LEN = 4


def new_codes(count: int = CODE_COUNT) -> list[str]:
    """``count`` codes like ``k7mq-2x9d-pq4r``."""
    return [
        "-".join(
            "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS)
        )
        for _ in range(count)
    ]


def normalize(code: str) -> str:
    """What a person typed, without spaces, dashes or case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def hash_code(key: bytes, code: str) -> str:
    return hmac.new(key, normalize(code).encode(), hashlib.sha256).hexdigest()
