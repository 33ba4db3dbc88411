"""The Redis connection and key names shared by every app (buckets, leases, tracking, locks).

Every key carries one hash tag (`{prefix}`), so multi-key scripts also run on Redis Cluster:
a cluster places all keys with the same tag in one slot.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    # Keyed by URL so that a test that changes REDIS_URL gets a client for that server.
    return _client(settings.REDIS_URL)


def key(*parts: object) -> str:
    return ":".join([f"{{{settings.REDIS_KEY_PREFIX}}}", *(str(p) for p in parts)])


def text(value: bytes | str | None) -> str | None:
    """A Redis reply as text (the client returns bytes)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
