"""Scenario 10: ten million subscribers and fifty million ledger rows on one PostgreSQL.

Subscribers with five attributes on five lists, imported through the real import; five
campaigns to all of them written to the ledger by the real snapshot and then marked sent by
SQL (sending 50 million messages to smtp-sink would take days here); then a sixth started and
sent by the real engine for a while. Measured: import and snapshot times, ledger bytes per
row (tables and indexes) while sending and after finish, bounce lookups, the admin pages
through gunicorn with a real HTTP client, the worker's memory, and the disk used.
"""

from __future__ import annotations

import csv
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.scenarios.common import (
    Sampler,
    cancel_campaigns,
    create_campaign,
    db,
    performance,
    reset,
)
from bench.stack import ROOT, STATE, Stack
from devstack.processes import port_open, wait_for

LISTS = 5
PAST_CAMPAIGNS = 5
PLANS = ["free", "basic", "pro", "team", "enterprise"]
CITIES = ["Oslo", "Lyon", "Porto", "Graz", "Turku", "Cork", "Gent", "Split"]
PORT = 8712
WARM = 4  # requests before measuring a page: one per gunicorn worker


def write_file(path: Path, count: int, prefix: str) -> None:
    """`count` subscribers with five attributes: city, plan, age, signup date and score."""
    rng = random.Random(prefix)  # noqa: S311 (benchmark data)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city", "plan", "age", "signup", "score"])
        for n in range(count):
            writer.writerow(
                [
                    f"{prefix}{n}@bench{n % 97}.example",
                    f"Reader {prefix}{n}",
                    rng.choice(CITIES),
                    rng.choice(PLANS),
                    rng.randint(18, 90),
                    f"20{rng.randint(10, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.randint(0, 1000),
                ]
            )


def ledger_bytes(stack: Stack) -> dict:
    """The ledger's size on disk: heap (with TOAST) and every index, per live row."""
    with db(stack) as conn:
        rows = conn.execute("SELECT count(*) FROM mailer_delivery").fetchone()[0]
        table, indexes = conn.execute(
            "SELECT pg_table_size('mailer_delivery'), pg_indexes_size('mailer_delivery')"
        ).fetchone()
        each = dict(
            conn.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)"
                " FROM pg_index WHERE indrelid = 'mailer_delivery'::regclass"
            ).fetchall()
        )
    per_row = (table + indexes) / rows if rows else 0
    return {
        "rows": rows,
        "table_bytes": table,
        "index_bytes": indexes,
        "bytes_per_row": round(per_row, 1),
        "index_bytes_per_row": {k: round(v / rows, 1) for k, v in each.items()} if rows else {},
    }


def folded_bytes(stack: Stack) -> dict:
    """The folded ledger's size on disk: blocks, their compressed arrays (TOAST) and indexes,
    per row they hold."""
    with db(stack) as conn:
        rows, blocks, total, heap, toast, indexes = conn.execute(
            "SELECT coalesce(sum(size), 0), count(*), pg_total_relation_size('mailer_ledgerblock'),"
            " pg_relation_size('mailer_ledgerblock'),"
            " pg_total_relation_size(reltoastrelid), pg_indexes_size('mailer_ledgerblock')"
            " FROM mailer_ledgerblock, pg_class WHERE pg_class.relname = 'mailer_ledgerblock'"
            " GROUP BY reltoastrelid"
        ).fetchone()
    return {
        "rows": rows,
        "blocks": blocks,
        "bytes": total,
        "heap_bytes": heap,
        "toast_bytes": toast,
        "index_bytes": indexes,
        "bytes_per_row": round(total / rows, 1) if rows else 0,
    }


def fold_finished(stack: Stack) -> dict:
    """Every finished campaign's ledger folded (mailer.folding), each timed, after its figures
    are kept (mailer.rollups, as the engine does when a campaign finishes)."""
    from mailer import folding, rollups

    with db(stack) as conn:
        finished = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM campaigns_campaign WHERE status = 'finished' ORDER BY id"
            )
        ]
    rollup_seconds, fold_seconds = [], []
    for campaign in finished:
        started = time.monotonic()
        if rollups.roll_up(campaign):
            rollup_seconds.append(round(time.monotonic() - started, 1))
        started = time.monotonic()
        moved = folding.fold(campaign)
        fold_seconds.append(round(time.monotonic() - started, 1))
        print(f"folded campaign {campaign}: {moved} rows in {fold_seconds[-1]} s", flush=True)
    with db(stack) as conn:
        conn.execute("VACUUM ANALYZE mailer_delivery")
        conn.execute("VACUUM ANALYZE mailer_ledgerblock")
    return {
        "rollup_seconds": rollup_seconds,
        "fold_seconds": fold_seconds,
        "folded": folded_bytes(stack),
        "hot_after": ledger_bytes(stack),
    }


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, round(len(ordered) * 0.95) - 1)] * 1000, 2),
    }


def timed(call, repeat: int = 20) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def lookups(campaign: int, emails: list[str], delivery_ids: list[tuple[int, int]]) -> dict:
    """The bounce mailbox's lookups, through its own functions: by a signed Message-ID, by
    X-Campaign-ID and address; and a bounce webhook's, by address."""
    from django.conf import settings

    from mailer import dsn, mailbox
    from mailer.message import id_signature
    from subscribers.models import Subscriber

    secret = settings.SECRET_KEY
    picks = iter(range(10**6))

    def by_message_id() -> None:
        campaign_id, delivery_id = delivery_ids[next(picks) % len(delivery_ids)]
        signature = id_signature(campaign_id=campaign_id, delivery_id=delivery_id, secret=secret)
        report = dsn.Report("dsn", signed_ids=[(campaign_id, delivery_id, signature)])
        assert mailbox._signed_deliveries(report)

    def by_campaign_and_address() -> None:
        failure = dsn.Failure(emails[next(picks) % len(emails)], "hard")
        report = dsn.Report("dsn", failures=[failure], campaign_ids=[campaign])
        assert mailbox._delivery_for(failure, report, []) is not None

    def by_address() -> None:
        assert Subscriber.objects.filter(email=emails[next(picks) % len(emails)]).first()

    return {
        "by_message_id": timed(by_message_id),
        "by_campaign_and_address": timed(by_campaign_and_address),
        "subscriber_by_address": timed(by_address),
    }


def picked(stack: Stack, campaign: int, seed: int) -> tuple[list, int, int]:
    """200 ledger rows of the campaign at random (id, campaign, address), the list the pages
    filter by, and the subscriber whose page they open."""
    from mailer import folding

    with db(stack) as conn:
        low, high = conn.execute(
            "SELECT least(min(d.id), (SELECT min(first_id) FROM mailer_ledgerblock b"
            "                         WHERE b.campaign_id = %(c)s)),"
            " greatest(max(d.id), (SELECT max(last_id) FROM mailer_ledgerblock b"
            "                      WHERE b.campaign_id = %(c)s))"
            " FROM mailer_delivery d WHERE d.campaign_id = %(c)s",
            {"c": campaign},
        ).fetchone()
        picks = random.Random(seed).sample(range(low, high + 1), 200)  # noqa: S311
        sample = conn.execute(
            "SELECT id, campaign_id, email FROM mailer_delivery WHERE id = ANY(%s)", [picks]
        ).fetchall()
        found = {row[0] for row in sample}
        for pick in picks:  # rows folded since (mailer.folding)
            if pick not in found and (row := folding.row(campaign, pick)):
                sample.append((row.id, row.campaign_id, row.email))
        list_id = conn.execute(
            "SELECT id FROM subscribers_mailinglist WHERE name = 'list2'"
        ).fetchone()[0]
        subscriber = conn.execute(
            "SELECT id FROM subscribers_subscriber WHERE email = %s", [sample[0][2]]
        ).fetchone()[0]
    return sample, list_id, subscriber


def admin_pages(stack: Stack, campaign: int, list_id: int, subscriber: int, email: str) -> dict:
    """p50/p95 of 20 requests each (after WARM to warm the workers up), one after another, to
    the admin pages and endpoints, served by gunicorn (4 workers) as in production."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    get_user_model().objects.filter(username="bench").delete()  # from an earlier run
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x" * 20)
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    env = {
        **stack.env,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "OTP_REQUIRED_FOR_SUPERUSERS": "false",
        "DB_POOL_MAX_SIZE": "4",
        "STATIC_ROOT": str(STATE / "static"),
    }
    collect = [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True)
    stack.start(
        "web",
        [str(gunicorn), "settings.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "4", "-t", "600"],
        env,
    )
    wait_for(lambda: port_open(PORT), timeout=30, what="gunicorn")
    pages = {
        "subscribers": "/admin/subscribers/subscriber/",
        "subscribers_search_address": f"/admin/subscribers/subscriber/?q={email}",
        "subscribers_by_list": f"/admin/subscribers/subscriber/?list={list_id}",
        "subscriber": f"/admin/subscribers/subscriber/{subscriber}/change/",
        "lists": "/admin/subscribers/mailinglist/",
        "campaigns": "/admin/campaigns/campaign/",
        "campaign_report": f"/admin/campaigns/campaign/{campaign}/report/",
        "status_page": "/admin/status/",
        "status_json": "/admin/status.json",
        "metrics": "/metrics",
        "dashboard": "/admin/",
    }
    results: dict = {}
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    try:
        for name, path in pages.items():
            # Four requests first, one for each gunicorn worker to load the page's templates
            # and code (not counted), then 20 (3 if the first took over 5 s).
            samples, status, repeat, n = [], 0, WARM + 20, 0
            while n < repeat:
                started = time.perf_counter()
                connection.request("GET", path, headers={"Cookie": cookie})
                response = connection.getresponse()
                response.read()
                status = response.status
                took = time.perf_counter() - started
                if n >= WARM:
                    samples.append(took)
                elif n == 0 and took > 5:
                    repeat = WARM + 3  # a page this slow is measured 3 times, and says so
                n += 1
            results[name] = {"status": status, "samples": len(samples), **percentiles(samples)}
            print(name, results[name], flush=True)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: see {STATE / 'run' / 'web.log'}")
    finally:
        connection.close()
        stack.stop("web")
    return results


def send_another(stack: Stack, name: str, lists: list[str], seconds: float = 60) -> dict:
    """A campaign to every list, started as a user would (`campaign start`, the snapshot
    included) and sent by the engine (2 senders x 4) for `seconds`, then cancelled: its
    messages per second and the workers' peak RSS beside the big ledger."""
    campaign = create_campaign(stack, name, lists)
    started = time.monotonic()
    stack.manage("campaign", "start", str(campaign))
    start_seconds = round(time.monotonic() - started, 1)
    workers = stack.start_engine(senders=2, concurrency=4)
    sampler = Sampler(stack, workers)
    sampler.start()
    with db(stack) as conn:
        query = "SELECT sent FROM campaigns_campaign WHERE id = %s"
        sent_before = conn.execute(query, [campaign]).fetchone()[0]
        time.sleep(seconds)
        sent = conn.execute(query, [campaign]).fetchone()[0] - sent_before
    sampler.stopped.set()
    cancel_campaigns(stack, campaign)
    stack.stop_engine()
    return {
        f"start_{name}_seconds": start_seconds,
        f"{name}_messages_per_second": round(sent / seconds, 1),
        "worker_rss_mb": round(max(sampler.peak_rss.values()) / 2**20, 1),
        "worker_rss_mb_each": sorted(round(v / 2**20, 1) for v in sampler.peak_rss.values()),
    }


def ten_million(stack: Stack, count: int, send_seconds: float = 60) -> dict:
    """Scenario 10 at `count` subscribers (10,000,000 for the figures in the README)."""
    reset(stack)
    performance(stack)
    results: dict = {"subscribers": count}
    per_list = count // LISTS
    import_seconds = 0.0
    for n in range(LISTS):
        path = STATE / f"ten-million-{per_list}-{n}.csv"
        if not path.exists():
            write_file(path, per_list, f"l{n}x")
        started = time.monotonic()
        stack.manage("import_subscribers", str(path), "--list", f"list{n}", "--create-list")
        import_seconds += time.monotonic() - started
        print(f"imported list{n}: {import_seconds:.0f} s so far", flush=True)
    results["import_seconds"] = round(import_seconds, 1)

    os.environ.update(stack.env)
    import django

    django.setup()
    from campaigns.models import Campaign
    from mailer import ledger

    names = [f"list{n}" for n in range(LISTS)]
    with db(stack) as conn:
        conn.execute("VACUUM ANALYZE")
    snapshots, past = [], []
    for k in range(PAST_CAMPAIGNS):
        campaign = create_campaign(stack, f"past {k}", names)
        started = time.monotonic()
        written = ledger.snapshot(Campaign.objects.get(pk=campaign))
        snapshots.append(time.monotonic() - started)
        print(f"snapshot {k}: {written} rows in {snapshots[-1]:.1f} s", flush=True)
        if k == 0:
            results["ledger_while_sending"] = ledger_bytes(stack)  # every row pending
        with db(stack) as conn:
            conn.execute(
                "UPDATE mailer_delivery SET status = 'sent', attempts = 1, content_version = 1,"
                " sent_at = now() - interval '1 day' * %s"
                " + interval '1 millisecond' * (id %% 3600000),"
                " reply = '250 2.0.0 Ok: queued as ' || upper(to_hex(id)) WHERE campaign_id = %s",
                [PAST_CAMPAIGNS - k, campaign],
            )
            conn.execute(
                "UPDATE campaigns_campaign SET status = 'finished', total = %s, sent = %s,"
                " started_at = now() - interval '1 day' * %s, finished_at = now() WHERE id = %s",
                [written, written, PAST_CAMPAIGNS - k, campaign],
            )
            conn.execute("VACUUM ANALYZE mailer_delivery")
        past.append(campaign)
    results["snapshot_seconds"] = {
        "median": round(statistics.median(snapshots), 1),
        "max": round(max(snapshots), 1),
    }
    results["ledger_finished"] = ledger_bytes(stack)
    sample, list_id, subscriber = picked(stack, past[-1], seed=1)
    results["lookups"] = lookups(past[-1], [r[2] for r in sample], [(r[1], r[0]) for r in sample])
    print("lookups", results["lookups"], flush=True)
    results["fold"] = fold_finished(stack)
    results["lookups_folded"] = lookups(
        past[-1], [r[2] for r in sample], [(r[1], r[0]) for r in sample]
    )
    print("fold", results["fold"], "lookups", results["lookups_folded"], flush=True)

    results.update(send_another(stack, "sixth", names, send_seconds))

    results["admin"] = admin_pages(stack, past[-1], list_id, subscriber, sample[0][2])
    with db(stack) as conn:
        results["database_bytes"] = conn.execute("SELECT pg_database_size('mailer')").fetchone()[0]
    results["files_bytes"] = sum(p.stat().st_size for p in STATE.glob("ten-million-*.csv"))
    return results


def pages_again(stack: Stack, fold: bool = False, send: bool = False) -> dict:
    """Scenario 10's lookups and admin pages again, on the data its last run left in the
    benchmark's database (after a change to the code, in minutes rather than an hour).
    Finished campaigns get their figures kept first, as the engine does when one finishes
    (timed: `rollup_seconds`); with `fold`, their ledgers are folded next (mailer.folding);
    with `send`, another campaign to everyone is sent for a minute first (`send_another`)."""
    os.environ.update(stack.env)
    import django

    django.setup()
    from mailer import rollups

    with db(stack) as conn:
        finished = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM campaigns_campaign WHERE status = 'finished' ORDER BY id"
            )
        ]
        conn.execute("VACUUM ANALYZE")
    timings = []
    for campaign in finished:
        started = time.monotonic()
        if rollups.roll_up(campaign):
            timings.append(time.monotonic() - started)
    sent = send_another(stack, "another", [f"list{n}" for n in range(LISTS)]) if send else None
    folded = fold_finished(stack) if fold else None
    sample, list_id, subscriber = picked(stack, finished[-1], seed=2)
    with db(stack) as conn:
        rows = conn.execute("SELECT count(*) FROM subscribers_subscriber").fetchone()[0]
    return {
        "subscribers": rows,
        "rollup_seconds": [round(t, 1) for t in timings],
        "ledger": ledger_bytes(stack),
        "fold": folded,
        "send": sent,
        "lookups": lookups(finished[-1], [r[2] for r in sample], [(r[1], r[0]) for r in sample]),
        "admin": admin_pages(stack, finished[-1], list_id, subscriber, sample[0][2]),
    }
