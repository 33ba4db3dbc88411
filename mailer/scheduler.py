"""Fair sharing of the send slots between running campaigns (see scheduler.lua).

Send slots (batch tasks) are not tied to one campaign: before each chunk a slot asks Redis
which campaign to serve, and the answer keeps every running campaign's share of slot time in
proportion to its weight, to within a chunk, across every worker process and host. A
campaign that cannot use a slot right now (its rate limit's tokens are not due yet, its SMTP
server is unreachable, it has no due rows) is put on hold for that long and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from settings.redis import get_redis, key, text

_SCRIPT = (Path(__file__).parent / "scheduler.lua").read_text()


def _keys() -> list[str]:
    return [
        key("fair", "active"),
        key("fair", "vtime"),
        key("fair", "system"),
        key("fair", "holds"),
        key("fair", "spm"),
        key("limits"),
    ]


@dataclass(frozen=True)
class Pick:
    campaign_id: int | None
    estimate: float  # seconds charged in advance for the chunk
    chunk: int  # how many messages to claim
    wait: float  # with no campaign: seconds until the earliest hold ends (0: none held)


@dataclass
class Charge:
    """What the last chunk really cost, sent along with the next pick."""

    campaign_id: int
    seconds: float  # slot time charged to the campaign
    estimate: float
    sent: int
    measured: float | None = None  # the chunk's real duration (None: the charged seconds)


class Scheduler:
    def __init__(self, *, chunk: int, burst: float) -> None:
        self.chunk = chunk
        self.burst = burst
        self._script = get_redis().register_script(_SCRIPT)

    def _call(self, mode: str, charge: Charge | None) -> list:
        if charge is None:
            args: list = ["", 0, 0, 0]
            measured = 0.0
        else:
            args = [charge.campaign_id, charge.seconds, charge.estimate, charge.sent]
            measured = charge.seconds if charge.measured is None else charge.measured
        return self._script(keys=_keys(), args=[*args, self.chunk, self.burst, mode, measured])

    def pick(self, charge: Charge | None = None) -> Pick:
        campaign, estimate_us, chunk, wait_ms = self._call("pick", charge)
        ident = text(campaign)
        return Pick(
            campaign_id=int(ident) if ident else None,
            estimate=int(estimate_us) / 1_000_000,
            chunk=int(chunk),
            wait=int(wait_ms) / 1000,
        )

    def charge(self, charge: Charge) -> None:
        self._call("charge", charge)


def publish_active(weights: dict[int, float]) -> None:
    """The campaigns slots may serve, with their weights (the dispatcher, every tick)."""
    client = get_redis()
    name = key("fair", "active")
    pipe = client.pipeline(transaction=True)
    pipe.delete(name)
    if weights:
        pipe.hset(name, mapping={str(c): w for c, w in weights.items()})
        pipe.expire(name, 30)
    # Campaigns no longer running leave no virtual time behind.
    pipe.zrange(key("fair", "vtime"), 0, -1)
    *_, members = pipe.execute()
    gone = [m for m in members if int(m) not in weights]
    if gone:
        client.zrem(key("fair", "vtime"), *gone)
        client.hdel(key("fair", "spm"), *gone)


def deactivate(campaign_id: int) -> None:
    get_redis().hdel(key("fair", "active"), str(campaign_id))


def active_campaigns() -> set[int]:
    return {int(c) for c in get_redis().hkeys(key("fair", "active"))}


# --- Holds ----------------------------------------------------------------------------------


def hold(campaign_id: int, seconds: float, reason: str) -> None:
    """Skip this campaign for `seconds` (server clock), saying why."""
    client = get_redis()
    seconds_now, micros = client.time()
    until = seconds_now + micros / 1_000_000 + seconds
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key("fair", "holds"), {str(campaign_id): until})
    pipe.set(key("hold-reason", campaign_id), reason, px=max(int(seconds * 1000), 1))
    pipe.execute()


def held(campaign_id: int) -> str | None:
    """Why the campaign is on hold now, or None."""
    return text(get_redis().get(key("hold-reason", campaign_id)))


def release_hold(campaign_id: int) -> None:
    client = get_redis()
    client.zrem(key("fair", "holds"), str(campaign_id))
    client.delete(key("hold-reason", campaign_id))
