"""The benchmark scenarios. Each returns a dict of figures; __main__ runs them and reports."""

from __future__ import annotations

import json
import multiprocessing
import os
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
from bench.stack import CELERY, PORTS, ROOT, STATE, Stack, cpu_seconds, server_processes
from devstack.processes import port_open, wait_for


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


def _peer_env(stack: Stack, celery: bool) -> dict[str, str]:
    return {
        **stack.env,
        "DJANGO_SETTINGS_MODULE": "bench.peer.settings",
        "PEER_POSTGRES_PORT": str(PORTS["postgres"]),
        "PEER_SMTP_PORT": str(PORTS["sink"]),
        "PEER_REDIS_URL": f"redis://127.0.0.1:{PORTS['redis']}/1",
        "PEER_CELERY": "1" if celery else "0",
        "PEER_LOCK": str(STATE / "peer-post-office"),
    }


def _peer(stack: Stack, env: dict[str, str], *args: str) -> str:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"peer {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _peer_db(stack: Stack) -> psycopg.Connection:
    assert stack.postgres is not None
    return psycopg.connect(stack.postgres.url("peer"), autocommit=True)


def _peer_sent(stack: Stack) -> int:
    with _peer_db(stack) as conn:
        return conn.execute("SELECT count(*) FROM post_office_email WHERE status = 0").fetchone()[0]


def _peer_delivery_seconds(stack: Stack) -> float:
    with _peer_db(stack) as conn:
        first, last = conn.execute(
            "SELECT min(last_updated), max(last_updated) FROM post_office_email WHERE status = 0"
        ).fetchone()
    return (last - first).total_seconds()


def peer(stack: Stack, recipients: int, processes: int, mode: str) -> dict:
    """Scenario 3: django-post-office, with its Celery integration or send_queued_mail -p N."""
    celery = mode == "celery"
    env = _peer_env(stack, celery)
    _peer(stack, env, "-m", "django", "migrate", "--no-input", "-v", "0")
    cpu_before = cpu_seconds(server_processes(stack))
    if celery:
        stack.start(
            "peer-worker",
            [
                CELERY,
                "-A",
                "bench.peer.celery_app",
                "worker",
                "-c",
                str(processes),
                "-l",
                "warning",
                "--without-mingle",
                "--without-gossip",
            ],
            env=env,
        )
        time.sleep(3)
    started = time.monotonic()
    queue_seconds = float(_peer(stack, env, "-m", "bench.peer.run", "queue", str(recipients)))
    workers_cpu = 0.0
    if celery:
        while _peer_sent(stack) < recipients:
            time.sleep(0.5)
        workers_cpu = cpu_seconds(stack.tree("peer-worker"))
        stack.stop("peer-worker")
    else:
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        _peer(stack, env, "-m", "django", "send_queued_mail", "--processes", str(processes))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    elapsed = time.monotonic() - started
    sent = _peer_sent(stack)
    cpu = workers_cpu + cpu_seconds(server_processes(stack)) - cpu_before
    delivery = _peer_delivery_seconds(stack)
    return {
        "messages": sent,
        "queue_seconds": round(queue_seconds, 2),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(sent / elapsed, 1),
        "delivery_messages_per_second": round(sent / delivery, 1) if delivery else 0.0,
        "cpu_seconds_per_1000": round(cpu / sent * 1000, 3),
    }


def _start(stack: Stack, *campaigns: int) -> None:
    stack.manage("campaign", "start", *[str(c) for c in campaigns])


def _cancel(stack: Stack, *campaigns: int) -> None:
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


def _wait_status(stack: Stack, campaign: int, wanted: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while campaign_row(stack, campaign)[0] != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"campaign {campaign} did not become {wanted} in {timeout} s")
        time.sleep(0.1)


def _sent_times(stack: Stack, campaign: int, start, end) -> list[float]:
    """Send times (database clock, seconds) of a campaign's messages between two instants."""
    with db(stack) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM sent_at) FROM mailer_delivery WHERE campaign_id = %s"
            " AND status = 'sent' AND sent_at >= %s AND sent_at < %s",
            [campaign, start, end],
        ).fetchall()
    return sorted(float(r[0]) for r in rows)


def _largest_burst(times: list[float], window: float = 1.0) -> int:
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - window:
            left += 1
        best = max(best, right - left + 1)
    return best


def _db_now(stack: Stack):
    with db(stack) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def rate_accuracy(stack: Stack, limit: int, scope: str, seconds: float = 30) -> dict:
    """Scenario 4: a global or per-campaign limit, measured over `seconds` of steady sending."""
    reset(stack)
    if scope == "global":
        performance(stack, message_rate=limit)
    else:
        performance(stack)
    needed = int(limit * (seconds + 8)) + 1000
    import_audience(stack, needed, "rate", f"rate{needed}-")
    campaign = create_campaign(
        stack, "rate", ["rate"], rate_limit=limit if scope == "campaign" else None
    )
    stack.start_engine(senders=1, concurrency=4)
    _start(stack, campaign)
    _wait_status(stack, campaign, "running")
    time.sleep(3)  # past the start: the first batches, the snapshot's commit
    from datetime import timedelta

    start = _db_now(stack)
    time.sleep(seconds + 0.5)
    times = _sent_times(stack, campaign, start, start + timedelta(seconds=seconds))
    _cancel(stack, campaign)
    stack.stop_engine()
    measured = len(times) / seconds
    return {
        "limit": limit,
        "measured_per_second": round(measured, 2),
        "ratio": round(measured / limit, 4),
        "largest_1s_burst": _largest_burst(times),
        "burst_ratio": round(_largest_burst(times) / limit, 3),
    }


def jain(values: list[float]) -> float:
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 1.0


def fairness(stack: Stack, weights: list[int], per_campaign: int) -> dict:
    """Scenario 5: four campaigns at once; Jain's index of weight-normalised sends, each second."""
    reset(stack)
    performance(stack)
    campaigns = []
    for n, weight in enumerate(weights):
        import_audience(stack, per_campaign, f"fair{n}", f"f{n}-")
        campaigns.append(create_campaign(stack, f"fair {n}", [f"fair{n}"], weight=weight))
    stack.start_engine(senders=2, concurrency=4)
    _start(stack, *campaigns)
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
    _cancel(stack, *campaigns)
    stack.stop_engine()
    return {
        "weights": ":".join(map(str, weights)),
        "samples": len(indexes),
        "jain_min": round(min(indexes), 4) if indexes else 0.0,
        "jain_mean": round(statistics.fmean(indexes), 4) if indexes else 0.0,
        "jain_median": round(statistics.median(indexes), 4) if indexes else 0.0,
        "jain_each_second": [round(j, 4) for j in indexes],
    }


def scale(stack: Stack, sizes: list[int]) -> dict:
    """Scenario 6: import of the largest audience, snapshot time and worker RSS per size."""
    reset(stack)
    performance(stack)
    largest = max(sizes)
    import_seconds = import_audience(stack, largest, "everyone", "s")
    os.environ.update(stack.env)
    import django

    django.setup()
    from mailer.ledger import SNAPSHOT_SQL

    results: dict = {"import_subscribers": largest, "import_seconds": round(import_seconds, 2)}
    for size in sizes:
        with db(stack) as conn:
            conn.execute(
                "INSERT INTO subscribers_mailinglist (name, description, opt_in, is_public,"
                " created_at) VALUES (%s, '', 'single', false, now())",
                [f"size{size}"],
            )
            conn.execute(
                "INSERT INTO subscribers_subscription (subscriber_id, mailing_list_id, status,"
                " created_at, updated_at) SELECT s.id, l.id, 'confirmed', now(), now()"
                " FROM subscribers_subscriber s, subscribers_mailinglist l"
                " WHERE l.name = %s AND s.id <= %s",
                [f"size{size}", size],
            )
        campaign = create_campaign(stack, f"size {size}", [f"size{size}"])
        with db(stack) as conn:
            conn.execute("ANALYZE")
            started = time.monotonic()
            conn.execute(SNAPSHOT_SQL.replace("%(campaign)s", str(campaign)))
            snapshot = time.monotonic() - started
            conn.execute(
                "UPDATE campaigns_campaign SET status = 'running', started_at = now(),"
                " total = (SELECT count(*) FROM mailer_delivery WHERE campaign_id = %s)"
                " WHERE id = %s",
                [campaign, campaign],
            )
        workers = stack.start_engine(senders=1, concurrency=4)
        sampler = Sampler(stack, workers)
        sampler.start()
        time.sleep(20)
        sampler.stopped.set()
        _cancel(stack, campaign)
        stack.stop_engine()
        results[f"snapshot_seconds_{size}"] = round(snapshot, 3)
        results[f"worker_rss_mb_{size}"] = round(max(sampler.peak_rss.values()) / 2**20, 1)
        with db(stack) as conn:
            conn.execute("DELETE FROM mailer_delivery WHERE campaign_id = %s", [campaign])
    return results


def control_latency(stack: Stack) -> dict:
    """Scenario 7: pause to the last message sent, resume to the first."""
    reset(stack)
    performance(stack)
    import_audience(stack, 100_000, "control", "c")
    campaign = create_campaign(stack, "control", ["control"])
    stack.start_engine(senders=2, concurrency=4)
    _start(stack, campaign)
    _wait_status(stack, campaign, "running")
    time.sleep(3)
    # The instants of the status changes themselves (the command's own start-up excluded).
    changed = "SELECT updated_at FROM campaigns_campaign WHERE id = %s"
    stack.manage("campaign", "pause", str(campaign))
    time.sleep(3)
    with db(stack) as conn:
        paused_at = conn.execute(changed, [campaign]).fetchone()[0]
        last = conn.execute(
            "SELECT max(sent_at) FROM mailer_delivery WHERE campaign_id = %s", [campaign]
        ).fetchone()[0]
    stack.manage("campaign", "resume", str(campaign))
    with db(stack) as conn:
        resumed_at = conn.execute(changed, [campaign]).fetchone()[0]
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        with db(stack) as conn:
            first = conn.execute(
                "SELECT min(sent_at) FROM mailer_delivery WHERE campaign_id = %s AND sent_at > %s",
                [campaign, resumed_at],
            ).fetchone()[0]
        time.sleep(0.05)
    _cancel(stack, campaign)
    stack.stop_engine()
    return {
        "pause_to_last_sent_seconds": round(max((last - paused_at).total_seconds(), 0), 3),
        "resume_to_first_sent_seconds": round((first - resumed_at).total_seconds(), 3)
        if first
        else None,
    }


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
        token = links.token(subscriber, campaign)
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
