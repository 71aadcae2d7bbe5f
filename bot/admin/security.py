"""Console sessions and CSRF protection.

The session cookie holds a signed token (see :mod:`core.operators`): HttpOnly, SameSite
Strict, Secure when the request came over HTTPS. Every form carries a CSRF token derived
from the session (or, before logging in, from a random pre-session cookie) that a form
posted from another site cannot know.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION_COOKIE = "kigen_session"
LOGIN_COOKIE = "kigen_login"


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/admin",
    )


def csrf_token(key: bytes, anchor: str) -> str:
    """The CSRF token for a session (or pre-session) value."""
    return hmac.new(key, f"csrf:{anchor}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, anchor: str | None, given: str | None) -> bool:
    if not anchor or not given:
        return False
    return hmac.compare_digest(csrf_token(key, anchor).encode(), given.encode())


def new_login_anchor() -> str:
    return secrets.token_urlsafe(24)
