"""Adaptive back-off: an SMTP server that complains of too much mail gets less of it.

A 421 or 451 reply that speaks of volume ("421 4.7.0 Too many messages, slow down", "451
4.7.1 Rate limit exceeded", Gmail's "421-4.7.28 … unusual rate of mail") halves that server's
effective rate at once, for every worker on every host (the throttle's server bucket reads it
from Redis). Once the server has not complained for HOLD_SECONDS, the rate grows again by
STEP of its ceiling each second, and the back-off ends at the ceiling: the server's own rate
limit, or, for a server without one, what it was sending when it first complained. This is
additive increase, multiplicative decrease, TCP's answer to the same problem: the rate
settles just under what the server takes, and follows it when that changes.

A complaint is about the sender, not the recipient: that message is tried again in a couple
of seconds without using up one of its attempts, and the chunk stops there (the rest goes
back to pending, for the slower rate). The status page says "throttled by the server: 40/s
of 100/s" with the reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailer import counters, throttle
from mailer.smtp import ServerConfig
from settings.redis import get_redis, key, text

# Codes a server uses to say "not now" about the session or the sender; with words of volume
# they mean "slower". 450 is left out: Gmail's "450 4.2.1 … receiving mail at a rate" is about
# one recipient's mailbox, which the retry back-off handles.
_COMPLAINT = re.compile(
    r"^(?:sender refused: )?(?:421|451)\b.*?"
    r"(?:too many|too fast|too much|\brate|throttl|slow down|exceeded|volume)",
    re.IGNORECASE | re.DOTALL,
)
# Halve the rate on a complaint, at most once a second (the replies to messages already on
# their way describe the rate just cut), and never below one message a second.
FACTOR = 0.5
CUT_EVERY = 1.0
FLOOR = 1.0
# After this long without a complaint, win back STEP of the ceiling per second: from half
# the ceiling to all of it in ten seconds.
HOLD_SECONDS = 2.0
STEP = 0.05
# A complaint's message is tried again this soon (its attempts are not counted).
RETRY_SECONDS = 2

_SCRIPT = (Path(__file__).parent / "backoff.lua").read_text()


def _key() -> str:
    return key("server-backoff")


def is_complaint(reply: str) -> bool:
    """Whether an SMTP reply says the server gets too much mail from us."""
    return bool(_COMPLAINT.match(reply))


def _run(operation: str, args: dict[str, Any]) -> Any:
    script = get_redis().register_script(_SCRIPT)
    result = script(keys=[_key(), throttle.limits_key()], args=[operation, json.dumps(args)])
    return json.loads(text(result) or "{}")


def cut(server: ServerConfig, reply: str) -> float:
    """The server complained: halve its effective rate now; returns the new rate."""
    answer = _run(
        "cut",
        {
            "server": server.key,
            "field": throttle.field_server(server.key),
            "limit": server.rate_limit or 0,
            "measured": counters.server_rate(server.key),
            "reply": reply[:300],
            "floor": FLOOR,
            "every": CUT_EVERY,
            "factor": FACTOR,
        },
    )
    return float(answer["rate"])


def recover(limits: Mapping[str, float | int | None]) -> dict[str, float | int | None]:
    """On each dispatcher tick: raise the rates of servers in back-off that stopped
    complaining; returns the rate each of them may send at now (its own limit once the
    back-off is over). `limits` holds the servers' own limits by key."""
    servers = [text(s) or "" for s in get_redis().hkeys(_key())]
    if not servers:
        return {}
    rates = _run(
        "raise",
        {
            "servers": [{"server": s, "limit": limits.get(s) or 0} for s in servers],
            "hold": HOLD_SECONDS,
            "step": STEP,
        },
    )
    return {s: (rate if rate else limits.get(s)) for s, rate in rates.items()}


def states() -> dict[str, dict[str, Any]]:
    """Servers in back-off: their rate now, its ceiling, since when, and the last complaint."""
    raw = get_redis().hgetall(_key())
    return {text(k) or "": json.loads(v) for k, v in raw.items()}
