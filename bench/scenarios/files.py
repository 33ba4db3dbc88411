"""Scenario 8: importing and exporting subscriber files."""

from __future__ import annotations

import time

import psutil

from bench import content
from bench.scenarios.common import reset
from bench.stack import ROOT, STATE, Stack


def subscriber_files(stack: Stack, count: int) -> dict:
    """Scenario 8: import a CSV of `count` subscribers, export them all as CSV (with the
    exporting process's peak memory), and import the export again in update mode."""
    import subprocess
    import sys

    reset(stack)
    source = STATE / f"subscribers-files-{count}.csv"
    if not source.exists():
        content.write_subscribers(source, count, "f")
    started = time.monotonic()
    stack.manage("import_subscribers", str(source), "--list", "files", "--create-list")
    import_seconds = time.monotonic() - started

    exported = STATE / f"export-{count}.csv"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "export_subscribers", "--output", str(exported)],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.05)
    export_seconds = time.monotonic() - started
    rows = sum(1 for _ in exported.open(encoding="utf-8")) - 1

    started = time.monotonic()
    stack.manage("import_subscribers", str(exported), "--mode", "update")
    update_seconds = time.monotonic() - started
    return {
        "subscribers": count,
        "import_seconds": round(import_seconds, 2),
        "export_seconds": round(export_seconds, 2),
        "export_rows": rows,
        "export_peak_rss_mb": round(peak / 2**20, 1),
        "update_import_seconds": round(update_seconds, 2),
    }
