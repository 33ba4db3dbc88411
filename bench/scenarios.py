"""The benchmark scenarios. Each returns a dict of figures; __main__ runs them and reports."""

from __future__ import annotations

import json
import multiprocessing
import smtplib
import statistics
import threading
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
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


def ours_cpu(stack: Stack) -> float:
    names = [n for n in stack.processes if n != "sink"]
    procs = [p for name in names for p in stack.tree(name)]
    return cpu_seconds(procs) + cpu_seconds(server_processes(stack))


def throughput(stack: Stack, recipients: int, senders: int, concurrency: int) -> dict:
    """Scenario 1: one campaign, no limits, from start to finished."""
    reset(stack)
    performance(stack)
    import_audience(stack, recipients, "bench", "t")
    campaign = create_campaign(stack, "throughput", ["bench"])
    workers = stack.start_engine(senders, concurrency)
    sampler = Sampler(stack, workers)
    sampler.start()
    cpu_before = ours_cpu(stack)
    started = time.monotonic()
    stack.manage("campaign", "start", str(campaign))
    while True:
        status, sent, _total = campaign_row(stack, campaign)
        if status == "finished":
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    cpu = ours_cpu(stack) - cpu_before
    sampler.stopped.set()
    stack.stop_engine()
    return {
        "messages": sent,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(sent / elapsed, 1),
        "cpu_seconds_per_1000": round(cpu / sent * 1000, 3),
        "peak_rss_mb_per_worker_process": round(max(sampler.peak_rss.values()) / 2**20, 1),
    }


def _raw_sender(port: int, messages: list[tuple[str, bytes]], connections: int, out) -> None:
    """One process: `connections` threads, each with its own persistent SMTP connection."""

    def send(chunk):
        smtp = smtplib.SMTP("127.0.0.1", port)
        for to, data in chunk:
            smtp.sendmail("bench@example.com", [to], data)
        smtp.quit()

    threads = [
        threading.Thread(target=send, args=(messages[i::connections],)) for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(len(messages))


def raw_baseline(stack: Stack, recipients: int, processes: int, connections: int) -> dict:
    """Scenario 2: prebuilt messages pushed with smtplib over persistent connections."""
    subject, html, text = content.rendered_example()
    message = MIMEMultipart("alternative")
    message["Subject"] = subject
    message["From"] = "Bench <bench@example.com>"
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    prebuilt = []
    for n in range(recipients):
        message["To"] = f"r{n}@bench.example"
        prebuilt.append((f"r{n}@bench.example", message.as_bytes()))
        del message["To"]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    per_process = [prebuilt[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=_raw_sender, args=(PORTS["sink"], part, connections, queue))
        for part in per_process
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    sent = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    return {
        "messages": sent,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(sent / elapsed, 1),
        "message_bytes": len(prebuilt[0][1]),
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
