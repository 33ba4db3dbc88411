"""The fault-injection suite: a real system (PostgreSQL, Redis, worker processes, beat, an
SMTP sink that records every message) with faults injected while a campaign sends; the
ledger is checked against what the sink received, recipient by recipient.

Run on its own with `./dev test tests/faults`; a table of the figures closes the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import processes  # noqa: F401 (the real worker processes fixture)

_rows: list[dict] = []


@pytest.fixture
def fault_report() -> Iterator[list[dict]]:
    """Each test appends one row of figures for the summary table."""
    rows: list[dict] = []
    yield rows
    _rows.extend(rows)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _rows:
        return
    columns = ["scenario", "recipients", "received", "lost", "duplicates", "allowed", "seconds"]
    terminalreporter.section("fault injection")
    terminalreporter.write_line(
        " | ".join(f"{c:>10}" if c != "scenario" else f"{c:<38}" for c in columns)
    )
    for row in _rows:
        if "minutes" in row:
            continue
        terminalreporter.write_line(
            " | ".join(
                f"{row.get(c, ''):<38}" if c == "scenario" else f"{row.get(c, ''):>10}"
                for c in columns
            )
        )
    for row in _rows:
        if "minutes" not in row:
            continue
        terminalreporter.section("soak, minute by minute")
        terminalreporter.write_line(
            f"{'minute':>6} | {'fault':<28} | {'allowed':>7} | {'received':>9} | "
            f"{'per second':>10} | {'sender RSS MB':>13} | {'seconds':>7}"
        )
        for m in row["minutes"]:
            terminalreporter.write_line(
                f"{m.minute:>6} | {m.fault:<28} | {m.allowed:>7} | {m.received:>9} | "
                f"{m.per_second:>10} | {m.rss_mb:>13} | {m.seconds:>7}"
            )
