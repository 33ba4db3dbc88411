"""Scenario 5: how fairly running campaigns share the workers by weight (Jain's index)."""

from __future__ import annotations

import statistics
import time

from bench.scenarios.common import (
    cancel_campaigns,
    create_campaign,
    db,
    import_audience,
    jain,
    performance,
    reset,
    start_campaigns,
)
from bench.stack import Stack


def fairness(stack: Stack, weights: list[int], per_campaign: int) -> dict:
    """Scenario 5: four campaigns at once; Jain's index of weight-normalised sends, each second."""
    reset(stack)
    performance(stack)
    campaigns = []
    for n, weight in enumerate(weights):
        import_audience(stack, per_campaign, f"fair{n}", f"f{n}-")
        campaigns.append(create_campaign(stack, f"fair {n}", [f"fair{n}"], weight=weight))
    stack.start_engine(senders=2, concurrency=4)
    start_campaigns(stack, *campaigns)
    indexes = []
    started = time.monotonic()
    while time.monotonic() - started < 300:
        time.sleep(1.0)
        with db(stack) as conn:
            rows = dict(
                conn.execute(
                    "SELECT id, sent FROM campaigns_campaign WHERE id = ANY(%s)", [campaigns]
                ).fetchall()
            )
        sent = [rows[c] for c in campaigns]
        if min(sent) == 0:
            continue
        if max(sent) >= per_campaign:
            break  # one has finished: the others no longer compete with it
        indexes.append(jain([s / w for s, w in zip(sent, weights, strict=True)]))
    cancel_campaigns(stack, *campaigns)
    stack.stop_engine()
    return {
        "weights": ":".join(map(str, weights)),
        "samples": len(indexes),
        "jain_min": round(min(indexes), 4) if indexes else 0.0,
        "jain_mean": round(statistics.fmean(indexes), 4) if indexes else 0.0,
        "jain_median": round(statistics.median(indexes), 4) if indexes else 0.0,
        "jain_each_second": [round(j, 4) for j in indexes],
    }
