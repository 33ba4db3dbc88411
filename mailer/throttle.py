"""Rate limits that hold across every worker: GCRA buckets in Redis, taken in one Lua call.

Buckets: the global `message_rate`, the campaign's rate (its share of the global rate, see
`allocate_rates`), the SMTP server's `rate_limit`, and one per throttled recipient domain.
A batch asks for a chunk of messages at a time, so Redis costs one round trip per chunk.
Hand-written rather than a rate-limit library: those take one token per call and one bucket
at a time, where a chunk needs all four buckets at once, atomically, on Redis's clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mailer import events
from settings.redis import get_redis, key, text

# How many seconds of messages a full bucket may release at once. Small, so that a measured
# rate stays within a few per cent of the limit from the first second on; one message at the
# least, so that very low rates still send.
BURST_SECONDS = 0.1

# Transactional messages may run this far ahead of the global and server rates: bulk sending
# keeps those buckets at most BURST_SECONDS ahead, so a transactional message never waits
# behind a campaign, and the campaign's next chunk waits for the tokens it took instead.
PRIORITY_BURST_SECONDS = 1.0

_SCRIPT = (Path(__file__).parent / "throttle.lua").read_text()


def limits_key() -> str:
    return key("limits")


def field_global() -> str:
    return "global"


def field_campaign(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def field_server(server_key: str) -> str:
    return f"server:{server_key}"


def field_domain(domain: str) -> str:
    return f"domain:{domain}"


@dataclass(frozen=True)
class Bucket:
    name: str  # what the status page says limits a campaign: global, campaign, server, domain:x
    field: str
    rate: int | None  # the database's value, used when no live rate is published
    shared: bool  # applies to every message (global, campaign, server) or only to a domain's

    @property
    def redis_key(self) -> str:
        return key("bucket", self.field)


@dataclass(frozen=True)
class Grant:
    positions: list[int]  # 0-based positions in the chunk of the messages that may go now
    wait: float  # seconds until the next refused message could go
    limited_by: str  # the bucket that refused, or ""
    stopped_at: int  # 0-based position where a shared bucket ran out (len(chunk) if none)


class Throttle:
    """The buckets one batch takes from."""

    def __init__(
        self,
        *,
        campaign_id: int | None,
        campaign_rate: int | None,
        global_rate: int | None,
        server_key: str,
        server_rate: int | None,
        domain_rates: dict[str, int],
        burst: float = BURST_SECONDS,
    ) -> None:
        """campaign_id None: a transactional message's, which has no campaign bucket. burst:
        how far ahead of the rate a caller may take tokens; transactional messages take them
        with a larger one (PRIORITY_BURST_SECONDS), so that they go at once where a campaign
        keeps the bucket full, and the campaign waits for the tokens they took."""
        self.shared = [
            Bucket("global", field_global(), global_rate, True),
            Bucket("server", field_server(server_key), server_rate, True),
        ]
        if campaign_id is not None:
            campaign = Bucket("campaign", field_campaign(campaign_id), campaign_rate, True)
            self.shared.insert(1, campaign)
        self.domain_rates = domain_rates
        self.burst = burst
        self._script = get_redis().register_script(_SCRIPT)

    def acquire(self, domains: list[str]) -> Grant:
        """Take tokens for messages to these recipient domains, in order."""
        buckets = list(self.shared)
        index: dict[str, int] = {}
        messages = []
        for domain in domains:
            if domain in self.domain_rates:
                if domain not in index:
                    buckets.append(
                        Bucket(
                            f"domain:{domain}",
                            field_domain(domain),
                            self.domain_rates[domain],
                            False,
                        )
                    )
                    index[domain] = len(buckets)  # 1-based, as Lua counts
                messages.append(index[domain])
            else:
                messages.append(0)
        spec = {
            "burst": self.burst,
            "buckets": [
                {"name": b.name, "field": b.field, "rate": b.rate or 0, "shared": b.shared}
                for b in buckets
            ],
            "messages": messages,
        }
        granted, wait_ms, limited_by, stopped_at = self._script(
            keys=[limits_key(), *(b.redis_key for b in buckets)], args=[json.dumps(spec)]
        )
        return Grant(
            positions=[p - 1 for p in granted],
            wait=int(wait_ms) / 1000,
            limited_by=limited_by.decode() if isinstance(limited_by, bytes) else limited_by,
            stopped_at=int(stopped_at) - 1,
        )


@dataclass(frozen=True)
class Demand:
    campaign_id: int
    weight: float
    rate_limit: int | None


def allocate_rates(global_rate: int | None, demands: list[Demand]) -> dict[int, float | None]:
    """Share the global rate between running campaigns by weight, within their own limits.

    Max-min fairness ("water filling"): a campaign whose own limit is below its weighted share
    gets its limit, and what it leaves is shared among the others by weight. Without a global
    rate each campaign simply has its own limit (None: no limit).
    """
    if global_rate is None:
        return {d.campaign_id: d.rate_limit for d in demands}
    allocation: dict[int, float | None] = {}
    remaining = float(global_rate)
    active = list(demands)
    while active:
        share = remaining / sum(d.weight for d in active)
        capped = [
            d for d in active if d.rate_limit is not None and d.rate_limit <= share * d.weight
        ]
        if not capped:
            for d in active:
                allocation[d.campaign_id] = share * d.weight
            break
        for d in capped:
            allocation[d.campaign_id] = d.rate_limit
            remaining -= d.rate_limit or 0
            active.remove(d)
    return allocation


def publish_limits(
    *,
    global_rate: int | None,
    campaign_rates: dict[int, float | None],
    server_rates: Mapping[str, float | int | None],
    domain_rates: dict[str, int],
) -> None:
    """Make the current limits live for every batch (read by the Lua script on each call)."""
    fields: dict[str, str] = {field_global(): str(global_rate or 0)}
    for campaign_id, rate in campaign_rates.items():
        # Rates are messages/s; a fractional share rounds up so that shares sum to the limit
        # rather than just under it (the global bucket still caps the total).
        fields[field_campaign(campaign_id)] = str(math.ceil(rate * 1000) / 1000 if rate else 0)
    for server_key, rate in server_rates.items():
        fields[field_server(server_key)] = str(rate or 0)
    for domain, rate in domain_rates.items():
        fields[field_domain(domain)] = str(rate)
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(limits_key())
    pipe.hset(limits_key(), mapping=cast("Mapping[Any, Any]", fields))
    # If the dispatcher stops, batches fall back to the database's values after this long.
    pipe.expire(limits_key(), 30)
    pipe.execute()


# --- What held a campaign back last (for its status) ---------------------------------


def _limited_key(campaign_id: int) -> str:
    return key("limited", campaign_id)


_LIMIT_NAMES = {
    "global": "the global message rate",
    "campaign": "its rate limit",
    "server": "its SMTP server's rate limit",
}


# A campaign held back by a limit is reported among the status page's warnings once in this
# long (its status says so all the time).
LIMIT_EVENT_EVERY = 300


def note_limited(campaign_id: int, limited_by: str) -> None:
    """Remember for a few seconds which bucket last held a campaign back (for its status)."""
    fields: dict[str, Any] = {"campaign_id": campaign_id, "limited_by": limited_by}
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(_limited_key(campaign_id), limited_by, ex=3)
    pipe.set(events.seen_key("rate limit reached", fields), 1, nx=True, ex=LIMIT_EVENT_EVERY)
    _, first = pipe.execute()
    if first:
        name = _LIMIT_NAMES.get(limited_by) or f"the throttle of {limited_by.partition(':')[2]}"
        events.warn(
            "rate limit reached",
            f"Campaign {campaign_id} is sending as fast as {name} allows.",
            **fields,
        )


def limited_by(campaign_id: int) -> str:
    return text(get_redis().get(_limited_key(campaign_id))) or ""
