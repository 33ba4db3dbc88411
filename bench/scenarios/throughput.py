"""Scenario 1: messages per second through the whole engine, to smtp-sink."""

from __future__ import annotations

import time

from bench.scenarios.common import (
    Sampler,
    campaign_row,
    cpu_parts,
    create_campaign,
    import_audience,
    performance,
    reset,
)
from bench.stack import Stack


def throughput(stack: Stack, recipients: int, senders: int, concurrency: int) -> dict:
    """Scenario 1: one campaign, no limits, from start to finished."""
    reset(stack)
    performance(stack)
    import_audience(stack, recipients, "bench", "t")
    campaign = create_campaign(stack, "throughput", ["bench"])
    workers = stack.start_engine(senders, concurrency)
    sampler = Sampler(stack, workers)
    sampler.start()
    cpu_before = cpu_parts(stack)
    started = time.monotonic()
    stack.manage("campaign", "start", str(campaign))
    while True:
        status, sent, _total = campaign_row(stack, campaign)
        if status == "finished":
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    parts = {k: v - cpu_before[k] for k, v in cpu_parts(stack).items()}
    cpu = sum(parts.values())
    sampler.stopped.set()
    stack.stop_engine()
    return {
        "messages": sent,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(sent / elapsed, 1),
        "cpu_seconds_per_1000": round(cpu / sent * 1000, 3),
        "cpu_seconds_per_1000_by_part": {k: round(v / sent * 1000, 3) for k, v in parts.items()},
        "peak_rss_mb_per_worker_process": round(max(sampler.peak_rss.values()) / 2**20, 1),
    }
