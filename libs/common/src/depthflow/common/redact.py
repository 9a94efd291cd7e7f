"""Keep secrets out of what we print: passwords in URLs and values of secret-named fields.

Why a module of its own: the config loader, the embedded servers and the ``depthflow`` command
all print URLs and values, and a password must not reach a console or a log from any of them.
One masking rule, used everywhere, is easier to trust than three.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "is_secret_name", "mask_url", "mask_value"]

MASK = "***"

# scheme://user:password@host -> scheme://user:***@host; also inside longer text (error messages,
# comma-separated NATS server lists). The password is everything up to the last '@' before the host.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^/\s]*)@")

# Field or variable names whose values are secrets (``password``, ``api_key``, ``AUTH_TOKEN``).
_SECRET_WORDS = frozenset({"password", "passwd", "pass", "pwd", "secret", "key", "token", "apikey",
                           "credentials", "credential", "auth"})


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (user and host kept)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


def is_secret_name(name: str) -> bool:
    """Whether a field or variable called ``name`` holds a secret (any word of it is secret-like)."""
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", name.lower()) if word)


def mask_value(name: str, value: Any) -> str:
    """The printable form of ``value`` of the field ``name``: masked when it is or holds a secret."""
    if is_secret_name(name):
        return MASK
    return mask_url(repr(value))
