"""Counters the engine bumps as it sends, in Redis: messages sent per second, failures per
minute, and each SMTP server's last success and recent error replies. The status page,
`status.json` and /metrics read them back (mailer.status)."""

from __future__ import annotations

import json
import time

from settings.redis import get_redis, key

RATE_WINDOW = 10
# Failures are counted per minute over this many seconds for the auto-pause threshold
# (PerformanceSettings.max_send_errors).
ERROR_WINDOW = 600
_COUNTER_TTL = 120
SERVER_ERRORS_KEPT = 20


def server_failures_key(campaign_id: int) -> str:
    """Consecutive failures to reach a campaign's SMTP server (mailer.sender.server_failed);
    a chunk sent ends the streak (note_sent)."""
    return key("server-failures", campaign_id)


def note_sent(campaign_id: int, count: int, server_key: str | None = None) -> None:
    """Count messages sent this second, per campaign and per SMTP server (rates are read
    back from these per-second counters), and end the campaign's streak of failures to reach
    its server: one round trip."""
    if count <= 0:
        return
    second = int(time.time())
    names = [key("sent", campaign_id, second)]
    if server_key is not None:
        names.append(key("server-sent", server_key, second))
    pipe = get_redis().pipeline(transaction=False)
    for name in names:
        pipe.incrby(name, count)
        pipe.expire(name, _COUNTER_TTL)
    pipe.delete(server_failures_key(campaign_id))
    pipe.execute()


def note_failed(campaign_id: int, count: int) -> int:
    """Count failed sends; returns the failures of the last ERROR_WINDOW seconds."""
    minute = int(time.time()) // 60
    name = key("failed", campaign_id, minute)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incrby(name, count)
    pipe.expire(name, ERROR_WINDOW + 120)
    pipe.mget(
        [key("failed", campaign_id, m) for m in range(minute - ERROR_WINDOW // 60 + 1, minute + 1)]
    )
    _, _, values = pipe.execute()
    return sum(int(v) for v in values if v)


def rate(campaign_id: int, window: int = RATE_WINDOW) -> float:
    """Messages per second over the last `window` complete seconds."""
    now = int(time.time())
    names = [key("sent", campaign_id, second) for second in range(now - window, now)]
    values = get_redis().mget(names)
    return sum(int(v) for v in values if v) / window


def server_rate(server_key: str, window: int = 3) -> float:
    """Messages per second sent through one SMTP server over the last `window` seconds."""
    now = int(time.time())
    names = [key("server-sent", server_key, second) for second in range(now - window, now)]
    return sum(int(v) for v in get_redis().mget(names) if v) / window


# When this process last wrote each server's last success: once a second is enough for the
# status page, and this runs after every chunk.
_last_success_noted: dict[str, float] = {}


def note_server_replies(server_key: str, *, sent: int, errors: list[str]) -> None:
    """Remember a server's last success and its recent error replies (one round trip)."""
    now = time.time()
    note_success = sent and now - _last_success_noted.get(server_key, 0.0) >= 1.0
    if not note_success and not errors:
        return
    pipe = get_redis().pipeline(transaction=False)
    if note_success:
        _last_success_noted[server_key] = now
        pipe.set(key("smtp-ok", server_key), now, ex=7 * 86400)
    if errors:
        name = key("smtp-errors", server_key)
        pipe.lpush(name, *[json.dumps({"at": now, "reply": e}) for e in errors[-5:]])
        pipe.ltrim(name, 0, SERVER_ERRORS_KEPT - 1)
        pipe.expire(name, 7 * 86400)
    pipe.execute()


def server_replies(server_keys: list[str]) -> list[tuple[float | None, list[dict]]]:
    """Each server's last success (a timestamp) and its five newest error replies."""
    pipe = get_redis().pipeline(transaction=False)
    for server_key in server_keys:
        pipe.get(key("smtp-ok", server_key))
        pipe.lrange(key("smtp-errors", server_key), 0, 4)
    replies = iter(pipe.execute())
    return [
        (
            float(last_ok) if (last_ok := next(replies)) else None,
            [json.loads(e) for e in next(replies)],
        )
        for _ in server_keys
    ]


def _unknown_key() -> str:
    return key("unknown-outcomes")


def note_unknown(campaign_id: int, count: int) -> None:
    """Count messages whose outcome is unknown (sent whole, no answer came)."""
    if count > 0:
        get_redis().hincrby(_unknown_key(), str(campaign_id), count)


def unknown(campaign_id: int) -> int:
    return int(get_redis().hget(_unknown_key(), str(campaign_id)) or 0)
