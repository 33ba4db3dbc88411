"""How a request to /api/ proves who it is, as listmonk's clients send it:
`Authorization: token user:secret`, or HTTP basic auth with the same pair. A browser session
of a staff user works too (the interactive docs use it). Each API user is held to
API_RATE_LIMIT requests a minute."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from api import tokens


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "token":
        pair = value.strip()
    elif scheme == "basic":
        try:
            pair = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    else:
        return None
    username, sep, secret = pair.partition(":")
    return (username, secret) if sep and username and secret else None


def api_user(request: HttpRequest) -> Any:
    """The API user of the request (or a logged-in staff user), or None; counts the request
    against the user's rate limit."""
    pair = credentials(request.headers.get("Authorization", ""))
    if pair is not None:
        user = tokens.authenticate(*pair)
    elif request.method in ("GET", "HEAD", "OPTIONS"):
        # A staff session may read (the interactive docs); it may not write, since a form
        # on another site could post with the session's cookie (no CSRF token here).
        user = getattr(request, "user", None)
        if user is not None and not (user.is_authenticated and user.is_staff):
            user = None
    else:
        user = None
    if user is None:
        return None
    wait = tokens.wait_for_token(user.pk, settings.API_RATE_LIMIT)
    if wait:
        raise RateLimited(wait)
    return user
