"""Scenario 9: open and click tracking requests per second."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.scenarios.common import create_campaign, db, import_audience, performance, reset
from bench.stack import Stack
from devstack.processes import port_open, wait_for


def tracking(stack: Stack, seconds: float = 10, clients: int = 16, web_workers: int = 4) -> dict:
    """Scenario 9: open-pixel and click requests against the web app (gunicorn) for
    `seconds`, from `clients` keep-alive connections; then the batched write of the
    recorded events to PostgreSQL."""
    import http.client
    import shutil
    import statistics as stats
    import sys
    from concurrent.futures import ThreadPoolExecutor

    reset(stack)
    performance(stack)
    import_audience(stack, 1000, "tracked", "t")
    campaign = create_campaign(stack, "tracked", ["tracked"])
    os.environ.update(stack.env)
    import django

    django.setup()
    from campaigns.models import Campaign
    from subscribers import links

    subject = Campaign.objects.get(pk=campaign)
    link = subject.tracked_link_id("https://shop.example/offer")
    with db(stack) as conn:
        subscribers = [r[0] for r in conn.execute("SELECT id FROM subscribers_subscriber")]
    paths = []
    for n, subscriber in enumerate(subscribers):
        token = links.token(links.Purpose.TRACK, subscriber, campaign)
        paths.append(f"/o/{token}/" if n % 2 else f"/c/{token}/{link}/")

    port = 8711
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    stack.start(
        "web",
        [str(gunicorn), "settings.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(web_workers)],
        env={**stack.env, "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"},
    )
    wait_for(lambda: port_open(port), timeout=20, what="gunicorn")
    deadline = time.monotonic() + seconds

    def client(offset: int) -> list[float]:
        latencies = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = offset
        while time.monotonic() < deadline:
            started = time.monotonic()
            connection.request("GET", paths[n % len(paths)])
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 302), response.status
            latencies.append(time.monotonic() - started)
            n += clients
        connection.close()
        return latencies

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.monotonic() - started
    stack.stop("web")
    latencies = sorted(x for r in results for x in r)
    requests = len(latencies)

    from campaigns.tracking import flush

    started = time.monotonic()
    written = flush(limit=10**9)
    flush_seconds = time.monotonic() - started
    return {
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "latency_median_ms": round(stats.median(latencies) * 1000, 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "events_written": written,
        "flush_events_per_second": round(written / flush_seconds, 1) if flush_seconds else 0,
    }
