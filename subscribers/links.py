"""Signed links in emails: unsubscribe, preferences, view in a browser, confirm a subscription.

A link carries the subscriber's id (and the campaign's or list's) with an HMAC of them under
SECRET_KEY: it works without a login and cannot be guessed or altered. One signature per
recipient serves all of a message's links, which are then built by joining strings.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_confirm = signing.Signer(salt="subscribers.confirm")


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    # Derived once per secret rather than on every signature (Django's Signer derives it on
    # each call; this runs for every recipient of every campaign).
    return hashlib.sha256(f"subscribers.links{secret}".encode()).digest()


def _signature(value: str) -> str:
    digest = hmac.new(_key(settings.SECRET_KEY), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class BadLink(Exception):
    """A link that was altered, truncated or made up."""


@dataclass(frozen=True)
class LinkData:
    subscriber_id: int  # 0 in test sends and previews: there is no subscriber behind them
    campaign_id: int  # 0: not sent by a campaign


def token(subscriber_id: int | None, campaign_id: int | None) -> str:
    value = f"{subscriber_id or 0}.{campaign_id or 0}"
    return f"{value}:{_signature(value)}"


def read(value: str) -> LinkData:
    signed, _, signature = value.rpartition(":")
    if not signed or not hmac.compare_digest(signature, _signature(signed)):
        raise BadLink("the signature does not match")
    try:
        subscriber, _, campaign = signed.partition(".")
        return LinkData(int(subscriber), int(campaign))
    except ValueError as error:
        raise BadLink(str(error)) from error


def site(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def urls(value: str) -> dict[str, str]:
    """The links a campaign message can use, for its template context."""
    base = settings.SITE_URL.rstrip("/")
    return {
        "unsubscribe_url": f"{base}/u/{value}/",
        "preferences_url": f"{base}/p/{value}/",
        "view_url": f"{base}/v/{value}/",
        # Inserted by the content preparation, not written by people (campaigns.tracking).
        "tracking_base": f"{base}/c/{value}/",
        "open_url": f"{base}/o/{value}/",
    }


def confirm_token(subscriber_id: int, list_ids: list[int]) -> str:
    return _confirm.sign(f"{subscriber_id}.{'-'.join(str(i) for i in sorted(list_ids))}")


def read_confirm(value: str) -> tuple[int, list[int]]:
    try:
        subscriber, _, lists = _confirm.unsign(value).partition(".")
        return int(subscriber), [int(i) for i in lists.split("-") if i]
    except (signing.BadSignature, ValueError) as error:
        raise BadLink(str(error)) from error
