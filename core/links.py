"""Signed, expiring links to things Kigen serves (a calendar file on LINE).

A token is ``<subject>.<expiry unix time>.<signature>`` with an HMAC-SHA256 signature, so
the server needs no table of issued links and a tampered or expired link is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

LIFETIME = timedelta(days=7)


def _signature(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(key: bytes, subject: str, *, now: datetime, lifetime: timedelta = LIFETIME) -> str:
    """A token for ``subject`` (letters, digits, ``-`` and ``_``) valid for ``lifetime``."""
    if not subject or not subject.replace("-", "").replace("_", "").isalnum():
        raise ValueError("subject must be letters, digits, - or _")
    message = f"{subject}.{int((now + lifetime).timestamp())}"
    return f"{message}.{_signature(key, message)}"


def verify(key: bytes, token: str, *, now: datetime) -> str | None:
    """The subject of a valid, unexpired token; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    message = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2].encode(), _signature(key, message).encode()):
        return None
    if int(parts[1]) < now.timestamp():
        return None
    return parts[0]
