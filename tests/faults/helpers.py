"""What the SMTP sink received, compared with who should have got a campaign."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Tally:
    lost: set[str]
    duplicates: int
    received: dict[str, int]


def tally(smtp_sink, expected: set[str]) -> Tally:
    received = dict(smtp_sink.recipients())
    return Tally(
        lost=expected - set(received),
        duplicates=sum(n - 1 for n in received.values()),
        received=received,
    )


def record(
    fault_report: list[dict],
    scenario: str,
    result: Tally,
    *,
    expected: int,
    allowed: int,
    started: float,
) -> None:
    """One row of the suite's summary table."""
    fault_report.append(
        {
            "scenario": scenario,
            "recipients": expected,
            "received": len(result.received),
            "lost": len(result.lost),
            "duplicates": result.duplicates,
            "allowed": allowed,
            "seconds": round(time.monotonic() - started, 1),
        }
    )
