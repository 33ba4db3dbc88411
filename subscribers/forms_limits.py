"""Limits on the public subscribe form, counted in Redis so that they hold across every web
process: per client address (a script hammering the form) and per target address (someone
flooding another person's inbox with confirmation messages). Fixed windows: one INCR and one
EXPIRE per check, in one round trip."""

from __future__ import annotations

import hashlib
import time

from settings.redis import get_redis, key
from subscribers.addresses import lookup_form

# (posts allowed, per this many seconds): a person retrying a typo stays well within these.
PER_CLIENT = (10, 600)
PER_ADDRESS = (3, 3600)
# Messages a subscriber's links can have sent to them (their data, a preferences link).
PER_SUBSCRIBER_NOTICE = (3, 3600)


def _wait(kind: str, ident: str, limit: tuple[int, int]) -> int:
    """Seconds until another post is allowed (0: allowed now, and counted)."""
    allowed, window = limit
    now = int(time.time())
    name = key("form-limit", kind, ident, now // window)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window)
    count, _ = pipe.execute()
    return 0 if count <= allowed else window - now % window


def wait_for_client(client_address: str) -> int:
    return _wait("client", client_address, PER_CLIENT)


def wait_for_address(email: str) -> int:
    # Keys carry a digest, not the address: Redis holds no list of who was signed up.
    digest = hashlib.sha256(lookup_form(email).encode()).hexdigest()[:32]
    return _wait("address", digest, PER_ADDRESS)


def wait_for_notice(subscriber_id: int) -> int:
    return _wait("notice", str(subscriber_id), PER_SUBSCRIBER_NOTICE)
