"""Warnings an operator should see: logged as one structured line each, and kept in Redis so
that the status page can list the recent ones (limits hit, campaigns held back, auto-pauses,
stale claims recovered, SMTP servers unreachable)."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from settings.redis import get_redis, key

log = structlog.get_logger("mailer.events")

# The status page shows the newest of these; older ones live on in the logs.
KEEP = 200


def _key() -> str:
    return key("events")


def warn(event: str, message: str, *, once_per: float | None = None, **fields: Any) -> bool:
    """Log a warning and keep it for the status page; returns False if it was a repeat.

    With `once_per` (seconds), the same event for the same fields is recorded once in that
    long: a campaign held back by its rate would otherwise say so on every chunk.
    """
    client = get_redis()
    if once_per is not None and not client.set(
        seen_key(event, fields), 1, nx=True, px=int(once_per * 1000)
    ):
        return False
    log.warning(event, **fields, detail=message)
    record = json.dumps({"at": time.time(), "event": event, "message": message, **fields})
    pipe = client.pipeline(transaction=False)
    pipe.lpush(_key(), record)
    pipe.ltrim(_key(), 0, KEEP - 1)
    pipe.execute()
    return True


def seen_key(event: str, fields: dict[str, Any]) -> str:
    """The key that marks an event with these fields as recorded recently (see `once_per`)."""
    return key("event-seen", event, ":".join(f"{k}={fields[k]}" for k in sorted(fields)))


def recent(limit: int = 50) -> list[dict[str, Any]]:
    """The newest warnings first."""
    return [json.loads(raw) for raw in get_redis().lrange(_key(), 0, limit - 1)]
