"""Signed links in emails: view in a browser, unsubscribe, preferences, tracking, and the
confirmation of a subscription.

A link carries the subscriber's id and the campaign's with a signature under SECRET_KEY: it
works without a login and cannot be guessed or altered. Each link is signed for one purpose
and opens only that: the view link people forward and paste shows the message and nothing
else; only the preferences link reaches the preferences page (and from there an erase, or an
export mailed to the subscriber's own address).

The signatures of a recipient's links come from one SHAKE-256 of a 64-byte key and the ids,
132 bytes cut into four 33-byte (264-bit) parts, one per purpose. SHAKE is a sponge, which
needs no HMAC construction to be keyed by a prefix (no length extension), and parts of its
output are independent: holding one link tells nothing of the others. A message's four links
cost one hash, less than the single HMAC-SHA256 every link used to share.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_confirm = signing.Signer(salt="subscribers.confirm")


class Purpose(enum.IntEnum):
    """What a link may open; the value is the part of the signature that belongs to it."""

    VIEW = 0
    UNSUBSCRIBE = 1
    PREFERENCES = 2
    TRACK = 3  # the open pixel and the click redirects


PART = 44  # characters of URL-safe base64 per purpose (33 bytes)


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    # Derived once per secret rather than on every signature: this runs for every recipient
    # of every campaign.
    return hashlib.blake2b(f"subscribers.links.v2{secret}".encode(), digest_size=64).digest()


def _signatures(value: str) -> str:
    digest = hashlib.shake_256(_key(settings.SECRET_KEY) + value.encode()).digest(4 * 33)
    return base64.urlsafe_b64encode(digest).decode()


@functools.lru_cache(maxsize=4)
def _legacy_key(secret: str) -> bytes:
    return hashlib.sha256(f"subscribers.links{secret}".encode()).digest()


def _legacy_signature(value: str) -> str:
    digest = hmac.new(_legacy_key(settings.SECRET_KEY), value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# Messages sent before links were bound to a purpose carry one signature for all their
# links. Those keep doing what cannot hurt whoever holds them (unsubscribing must keep
# working for every message ever sent); their preferences link does not open the page.
LEGACY_PURPOSES = frozenset({Purpose.VIEW, Purpose.UNSUBSCRIBE, Purpose.TRACK})
_LEGACY_LENGTH = 43


class BadLink(Exception):
    """A link that was altered, truncated, made up, or made for another purpose."""


class OldLink(BadLink):
    """A link from a message sent before links were bound to a purpose, used for a purpose
    such links no longer open."""


@dataclass(frozen=True)
class LinkData:
    subscriber_id: int  # 0 in test sends and previews: there is no subscriber behind them
    campaign_id: int  # 0: not sent by a campaign


def _value(subscriber_id: int | None, campaign_id: int | None) -> str:
    return f"{subscriber_id or 0}.{campaign_id or 0}"


def token(purpose: Purpose, subscriber_id: int | None, campaign_id: int | None) -> str:
    value = _value(subscriber_id, campaign_id)
    start = purpose * PART
    return f"{value}:{_signatures(value)[start : start + PART]}"


def read(value: str, purpose: Purpose) -> LinkData:
    """The ids a link carries, if it was signed for `purpose`; BadLink otherwise."""
    signed, _, signature = value.rpartition(":")
    if not signed:
        raise BadLink("the link has no signature")
    if len(signature) == _LEGACY_LENGTH:
        if not hmac.compare_digest(signature, _legacy_signature(signed)):
            raise BadLink("the signature does not match")
        if purpose not in LEGACY_PURPOSES:
            raise OldLink("links of older messages do not open this page")
    else:
        start = purpose * PART
        if not hmac.compare_digest(signature, _signatures(signed)[start : start + PART]):
            raise BadLink("the signature does not match")
    try:
        subscriber, _, campaign = signed.partition(".")
        return LinkData(int(subscriber), int(campaign))
    except ValueError as error:
        raise BadLink(str(error)) from error


def site(path: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def urls(subscriber_id: int | None, campaign_id: int | None) -> dict[str, str]:
    """The links a campaign message can use, for its template context."""
    base = settings.SITE_URL.rstrip("/")
    value = _value(subscriber_id, campaign_id)
    s = _signatures(value)  # VIEW, UNSUBSCRIBE, PREFERENCES, TRACK, PART characters each
    track = f"{value}:{s[132:]}"
    return {
        "unsubscribe_url": f"{base}/u/{value}:{s[44:88]}/",
        "preferences_url": f"{base}/p/{value}:{s[88:132]}/",
        "view_url": f"{base}/v/{value}:{s[:44]}/",
        # Inserted by the content preparation, not written by people (campaigns.tracking).
        "tracking_base": f"{base}/c/{track}/",
        "open_url": f"{base}/o/{track}/",
    }


def preferences_url(subscriber_id: int) -> str:
    return site(f"/p/{token(Purpose.PREFERENCES, subscriber_id, None)}/")


def confirm_token(subscriber_id: int, list_ids: list[int]) -> str:
    return _confirm.sign(f"{subscriber_id}.{'-'.join(str(i) for i in sorted(list_ids))}")


def read_confirm(value: str) -> tuple[int, list[int]]:
    try:
        subscriber, _, lists = _confirm.unsign(value).partition(".")
        return int(subscriber), [int(i) for i in lists.split("-") if i]
    except (signing.BadSignature, ValueError) as error:
        raise BadLink(str(error)) from error
