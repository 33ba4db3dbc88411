"""What the benchmark scenarios share: the database, settings, audiences, campaigns, timing."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import psutil
import psycopg

from bench import content
from bench.stack import PORTS, STATE, Stack, cpu_seconds, server_processes


def db(stack: Stack) -> psycopg.Connection:
    assert stack.postgres is not None
    return psycopg.connect(stack.postgres.url("mailer"), autocommit=True)


def reset(stack: Stack) -> None:
    with db(stack) as conn:
        conn.execute(
            "TRUNCATE mailer_delivery, campaigns_campaign_lists, campaigns_campaign, "
            "campaigns_template, subscribers_subscription, subscribers_subscriber, "
            "subscribers_mailinglist, mailer_performancesettings, mailer_domainthrottle "
            "RESTART IDENTITY CASCADE"
        )
    import redis

    redis.Redis(port=PORTS["redis"]).flushall()


def performance(stack: Stack, **fields) -> None:
    columns = {
        "max_running_campaigns": 10,
        "message_rate": None,
        "default_campaign_rate": None,
        "batch_size": 50,
        "max_send_errors": 1000,
        "max_attempts": 5,
        "retry_delay": 60,
    } | fields
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    with db(stack) as conn:
        conn.execute("DELETE FROM mailer_performancesettings")
        conn.execute(
            f"INSERT INTO mailer_performancesettings (id, {names}, updated_at) "  # noqa: S608
            f"VALUES (1, {marks}, now())",
            list(columns.values()),
        )


def import_audience(stack: Stack, count: int, list_name: str, prefix: str) -> float:
    path = STATE / f"subscribers-{prefix}-{count}.csv"
    if not path.exists():
        content.write_subscribers(path, count, prefix)
    started = time.monotonic()
    stack.manage("import_subscribers", str(path), "--list", list_name, "--create-list")
    return time.monotonic() - started


def create_campaign(stack: Stack, name: str, list_names: list[str], **fields) -> int:
    with db(stack) as conn:
        template = conn.execute(
            "INSERT INTO campaigns_template (name, html, created_at, updated_at) "
            "VALUES (%s, %s, now(), now()) ON CONFLICT (name) DO UPDATE SET html = EXCLUDED.html "
            "RETURNING id",
            ["bench layout", content.LAYOUT],
        ).fetchone()[0]
        campaign = conn.execute(
            "INSERT INTO campaigns_campaign (name, subject, from_email, template_id, body, format,"
            " status, status_reason, rate_limit, weight, total, sent, failed, created_at,"
            " updated_at) VALUES (%s, %s, '', %s, %s, 'html', 'draft', '', %s, %s, 0, 0, 0,"
            " now(), now()) RETURNING id",
            [
                name,
                content.SUBJECT,
                template,
                content.BODY,
                fields.get("rate_limit"),
                fields.get("weight", 1),
            ],
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO campaigns_campaign_lists (campaign_id, mailinglist_id) "
            "SELECT %s, id FROM subscribers_mailinglist WHERE name = ANY(%s)",
            [campaign, list_names],
        )
    return campaign


def campaign_row(stack: Stack, campaign: int) -> tuple[str, int, int]:
    with db(stack) as conn:
        return conn.execute(
            "SELECT status, sent, total FROM campaigns_campaign WHERE id = %s", [campaign]
        ).fetchone()


class Sampler(threading.Thread):
    """Peak RSS of each worker process and CPU of everything ours, sampled while running."""

    def __init__(self, stack: Stack, workers: list[str]) -> None:
        super().__init__(daemon=True)
        self.stack, self.workers = stack, workers
        self.peak_rss: dict[int, int] = {}
        self.stopped = threading.Event()

    def processes(self) -> list[psutil.Process]:
        found = []
        for name in self.workers:
            found += self.stack.tree(name)
        return found

    def run(self) -> None:
        while not self.stopped.is_set():
            for process in self.processes():
                try:
                    rss = process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak_rss[process.pid] = max(self.peak_rss.get(process.pid, 0), rss)
            self.stopped.wait(0.5)


def cpu_parts(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of our processes (senders, the rest of the engine), PostgreSQL (its
    backends included) and Redis."""
    names = [n for n in stack.processes if n != "sink"]
    senders = [p for name in names if name.startswith("sender") for p in stack.tree(name)]
    others = [p for name in names if not name.startswith("sender") for p in stack.tree(name)]
    servers = server_processes(stack)
    redis_pid = stack.redis.pid() if getattr(stack, "redis", None) else None
    return {
        "senders": cpu_seconds(senders),
        "engine_other": cpu_seconds(others),
        "postgres": cpu_seconds([p for p in servers if p.pid != redis_pid]),
        "redis": cpu_seconds([p for p in servers if p.pid == redis_pid]),
    }


def median_report(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in keys
    }


def save(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def start_campaigns(stack: Stack, *campaigns: int) -> None:
    stack.manage("campaign", "start", *[str(c) for c in campaigns])


def cancel_campaigns(stack: Stack, *campaigns: int) -> None:
    """Cancel whatever still sends (a finished campaign needs no cancelling)."""
    with db(stack) as conn:
        left = [
            c
            for (c,) in conn.execute(
                "SELECT id FROM campaigns_campaign WHERE id = ANY(%s)"
                " AND status IN ('scheduled', 'running', 'paused')",
                [list(campaigns)],
            ).fetchall()
        ]
    for campaign in left:
        try:
            stack.manage("campaign", "cancel", str(campaign))
        except RuntimeError as error:
            if "A finished campaign" not in str(error):
                raise  # it finished in the meantime: nothing to cancel


def wait_status(stack: Stack, campaign: int, wanted: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while campaign_row(stack, campaign)[0] != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"campaign {campaign} did not become {wanted} in {timeout} s")
        time.sleep(0.1)


def sent_times(stack: Stack, campaign: int, start, end) -> list[float]:
    """Send times (database clock, seconds) of a campaign's messages between two instants."""
    with db(stack) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM sent_at) FROM mailer_delivery WHERE campaign_id = %s"
            " AND status = 'sent' AND sent_at >= %s AND sent_at < %s",
            [campaign, start, end],
        ).fetchall()
    return sorted(float(r[0]) for r in rows)


def largest_burst(times: list[float], window: float = 1.0) -> int:
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - window:
            left += 1
        best = max(best, right - left + 1)
    return best


def db_now(stack: Stack):
    with db(stack) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def jain(values: list[float]) -> float:
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 1.0
