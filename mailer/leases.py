"""Leases of batch tasks, kept in Redis so that every dispatcher sees every worker's batches.

The leases are a sorted set: member = batch id, score = the time (Redis server clock) until
which the batch is presumed alive. A queued batch holds a lease from the moment it is
enqueued; once a worker process runs it, the lease also names that process, whose heartbeat
(mailer.heartbeats) proves it alive. The dispatcher counts live leases to keep the right
number of batches in flight, and recovers the rows of batches whose lease lapsed or whose
process stopped beating: their worker died.
"""

from __future__ import annotations

from mailer import heartbeats
from settings.redis import get_redis, key, text

# A queued batch that no worker took within this long is presumed lost (its message went
# with a broker restart) and replaced. If it does run later, it works normally: batches
# claim rows in the database, so an extra batch is harmless.
QUEUED_LEASE_SECONDS = 60
# A running batch extends its lease every few seconds (mailer.fence, CONFIRM_EVERY). The
# lease must outlast the slowest single SMTP exchange (SmtpServer.timeout, 20 s by default):
# a batch that is alive but stuck in one slow exchange must not have its rows taken away. A
# batch whose process dies is noticed sooner, through the process heartbeat.
LEASE_SECONDS = 60


def _key() -> str:
    return key("leases")


def _owners_key() -> str:
    return key("lease-owners")


def _dead_key() -> str:
    return key("dead-batches")


def _server_time() -> float:
    seconds, micros = get_redis().time()
    return seconds + micros / 1_000_000


def grant(batch_id: str, seconds: float = QUEUED_LEASE_SECONDS, owner: str | None = None) -> None:
    """A lease until `seconds` from now; with `owner`, the process that runs the batch.

    The owner's heartbeat is written in the same transaction: a lease must never name a
    process without a heartbeat, or a dispatcher would take the batch for dead (which
    happens when Redis lost its data and the heartbeat thread has not written it again).
    """
    until = _server_time() + seconds
    pipe = get_redis().pipeline(transaction=True)
    if owner:
        heartbeats.queue_beat(pipe, owner)
        pipe.hset(_owners_key(), batch_id, owner)
    pipe.zadd(_key(), {batch_id: until})
    pipe.execute()


def renew(batch_id: str, owner: str, seconds: float = LEASE_SECONDS) -> bool:
    """Extend a lease; False if it was gone (and it is not granted again).

    A lease is gone when the batch was taken for dead (its process stopped beating, or it
    was stuck longer than a lease) or when Redis lost its data. Either way another batch may
    hold its rows now: the batch must stop (mailer.batch ends it), not carry on sending.
    """
    pipe = get_redis().pipeline(transaction=True)
    heartbeats.queue_beat(pipe, owner)
    pipe.zadd(_key(), {batch_id: _server_time() + seconds}, xx=True, ch=True)
    pipe.sismember(_dead_key(), batch_id)
    _, changed, dead = pipe.execute()
    return bool(changed) and not dead


def release(batch_id: str) -> None:
    pipe = get_redis().pipeline(transaction=True)
    pipe.zrem(_key(), batch_id)
    pipe.hdel(_owners_key(), batch_id)
    pipe.execute()


def live() -> set[str]:
    """Batch ids with a live lease; lapsed ones and those of dead processes are dropped."""
    return set(live_owners())


def live_owners() -> dict[str, str | None]:
    """Live batches and the process running each (None: still queued)."""
    client = get_redis()
    now = _server_time()
    pipe = client.pipeline()
    pipe.zremrangebyscore(_key(), "-inf", now)
    pipe.zrange(_key(), 0, -1)
    pipe.hgetall(_owners_key())
    _, members, owners_raw = pipe.execute()
    alive = {m.decode() for m in members}
    owners = {k.decode(): v.decode() for k, v in owners_raw.items()}
    stale_owner_entries = [b for b in owners if b not in alive]
    beating = heartbeats.processes_alive(sorted({owners[b] for b in alive if b in owners}))
    dead = {b for b in alive if b in owners and not beating[owners[b]]}
    if dead or stale_owner_entries:
        pipe = client.pipeline(transaction=True)
        if dead:
            pipe.zrem(_key(), *dead)
            # Remembered until their rows are settled (mailer.dispatcher), by any dispatcher
            # on any tick: the lease that proved them dead is gone from now on.
            pipe.sadd(_dead_key(), *dead)
            pipe.expire(_dead_key(), DEAD_KEPT_SECONDS)
        pipe.hdel(_owners_key(), *dead, *stale_owner_entries)
        pipe.execute()
    return {b: owners.get(b) for b in alive - dead}


# How long a batch proven dead is remembered; its rows are settled on the next tick.
DEAD_KEPT_SECONDS = 600


def proven_dead() -> set[str]:
    """Batches whose process was seen dead (heartbeat stopped) while they held a lease."""
    return {text(m) or "" for m in get_redis().smembers(_dead_key())}


def mark_dead(batch_id: str) -> None:
    """A batch that failed and could not settle its own rows: the next dispatcher tick
    settles them from its journal, without waiting out a lease."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.sadd(_dead_key(), batch_id)
    pipe.expire(_dead_key(), DEAD_KEPT_SECONDS)
    pipe.execute()


def settled(batch_id: str) -> None:
    get_redis().srem(_dead_key(), batch_id)
