"""Leases of batch tasks, kept in Redis so that every dispatcher sees every worker's batches.

A campaign's leases are a sorted set: member = batch id, score = the time (Redis server clock)
until which the batch is presumed alive. A batch extends its lease while it works and drops
it when done. The dispatcher counts live leases to size a campaign's window of batches in
flight, and treats rows claimed by a batch without a live lease as abandoned (their worker
died) and returns them to `pending`.
"""

from __future__ import annotations

from mailer.redis_store import get_redis, key

# A queued batch that no worker took within this long is presumed lost (its message went
# with a broker restart); the window is refilled without it. If it does run later, it works
# normally: batches claim rows in the database, so an extra batch is harmless.
QUEUED_LEASE_SECONDS = 120
# A running batch extends its lease at least every RENEW_EVERY seconds; one that stops
# extending for LEASE_SECONDS is presumed dead. The lease must outlast the slowest single
# SMTP exchange (SmtpServer.timeout, 20 s by default), or a slow but live batch would have its
# rows recovered and sent twice.
LEASE_SECONDS = 60
RENEW_EVERY = 5


def _key(campaign_id: int) -> str:
    return key("leases", campaign_id)


def _server_time() -> float:
    seconds, micros = get_redis().time()
    return seconds + micros / 1_000_000


def grant(campaign_id: int, batch_id: str, seconds: float = QUEUED_LEASE_SECONDS) -> None:
    get_redis().zadd(_key(campaign_id), {batch_id: _server_time() + seconds})


def renew(campaign_id: int, batch_id: str, seconds: float = LEASE_SECONDS) -> bool:
    """Extend a lease; False if it had already lapsed (the dispatcher may have taken the rows)."""
    changed = get_redis().zadd(
        _key(campaign_id), {batch_id: _server_time() + seconds}, xx=True, ch=True
    )
    return bool(changed)


def release(campaign_id: int, batch_id: str) -> None:
    get_redis().zrem(_key(campaign_id), batch_id)


def live(campaign_id: int) -> set[str]:
    """Batch ids with a live lease; lapsed ones are removed on the way."""
    client = get_redis()
    now = _server_time()
    pipe = client.pipeline()
    pipe.zremrangebyscore(_key(campaign_id), "-inf", now)
    pipe.zrange(_key(campaign_id), 0, -1)
    _, members = pipe.execute()
    return {m.decode() for m in members}


def forget(campaign_id: int) -> None:
    get_redis().delete(_key(campaign_id))
