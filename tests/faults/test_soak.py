"""The soak run, outside CI: `./dev test tests/faults --soak` sends one campaign at 500
messages a second for 30 minutes (`--soak-minutes N` for another length) while a fault
chosen at random strikes every minute: a worker or pool process killed with SIGKILL, a
process holding rows frozen past its heartbeat, Redis restarted empty, PostgreSQL restarted,
the SMTP server cutting connections after the final dot. At the end nobody is lost, every
repeat is one the README's guarantee allows for the faults that struck, and the senders'
memory is flat. Its table (one row a minute) closes the run."""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import pytest
from django.db import connections

from mailer import heartbeats
from tests.e2e.helpers import bulk_audience, settings_row, status, wait_until
from tests.factories import CampaignFactory, MailingListFactory
from tests.faults import servers
from tests.faults.helpers import record, tally
from tests.faults.servers import needs_servers
from tests.faults.test_frozen_workers import a_process_holding_rows
from tests.smtp_sink import DROP

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

RATE = 500
SENDERS, CONCURRENCY = 2, 2
SEED = 15


@dataclass
class Minute:
    minute: int
    fault: str
    allowed: int
    received: int
    per_second: float
    rss_mb: float
    seconds: float


def sender_rss_mb(processes) -> float:
    """Resident memory of every sender worker, main and pool processes, in MB."""
    total = 0
    for name in [f"sender{n}" for n in range(1, SENDERS + 1)]:
        try:
            main = psutil.Process(processes.running[name].pid)
            total += sum(p.memory_info().rss for p in [main, *main.children(recursive=True)])
        except psutil.Error:
            continue
    return total / 1e6


class Faults:
    """One fault a minute, each returning how many repeats the guarantee allows for it."""

    def __init__(self, processes, smtp_sink, campaign, rng: random.Random) -> None:
        self.processes = processes
        self.smtp_sink = smtp_sink
        self.campaign = campaign
        self.rng = rng
        self.kinds: dict[str, Callable[[], int]] = {
            "kill -9": self.kill,
            "SIGSTOP past the heartbeat": self.freeze,
            "Redis restarted empty": self.restart_redis,
            "PostgreSQL restarted": self.restart_postgres,
            "SMTP drops after DATA": self.drop_after_data,
        }
        self.round: list[str] = []

    def strike(self) -> tuple[str, int]:
        """The next fault: every kind once in each round of five, in a random order."""
        if not self.round:
            self.round = sorted(self.kinds)
            self.rng.shuffle(self.round)
        name = self.round.pop()
        return name, self.kinds[name]()

    def kill(self) -> int:
        """A pool process (its worker starts another) or a whole worker (started again)."""
        name = self.rng.choice([f"sender{n}" for n in range(1, SENDERS + 1)])
        process = self.processes.running[name]
        children = psutil.Process(process.pid).children()
        if self.rng.random() < 0.5 and children:
            os.kill(self.rng.choice(children).pid, signal.SIGKILL)
            return 1  # one message may have been in its SMTP transaction
        self.processes.kill(name)
        self.processes.worker(name, "send", CONCURRENCY, wait=False)
        return len(children)

    def freeze(self) -> int:
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:
            pid = a_process_holding_rows(self.campaign)
        if pid is None:
            return 0
        os.kill(pid, signal.SIGSTOP)
        time.sleep(heartbeats.HEARTBEAT_TTL + 4)
        os.kill(pid, signal.SIGCONT)
        return 0  # it fences itself: nothing is repeated

    def restart_redis(self) -> int:
        server = servers.redis()
        server.stop()
        time.sleep(3)
        servers.start_redis(server)
        # A message accepted while Redis was gone may miss its journal entry and its
        # chunk's write: once per send slot (tests/faults/test_redis_lost.py).
        return SENDERS * CONCURRENCY

    def restart_postgres(self) -> int:
        server = servers.postgres()
        server.stop()
        connections.close_all()
        time.sleep(4)
        server.start()
        return 0

    def drop_after_data(self) -> int:
        """For 5 s the server takes every 25th message and cuts the connection before its
        answer: each is an unknown outcome, sent again (retry unknown outcomes is on)."""
        lock = threading.Lock()
        seen = {"n": 0, "cut": 0}

        def every_25th(envelope) -> str | None:
            with lock:
                seen["n"] += 1
                if seen["n"] % 25:
                    return None
                seen["cut"] += 1
                return DROP

        self.smtp_sink.handler.data_reply = every_25th
        time.sleep(5)
        self.smtp_sink.handler.data_reply = None
        return seen["cut"]


@needs_servers
@pytest.mark.timeout(4 * 3600)  # the run's own length, beyond the suite's 300 s a test
def test_soak(processes, sink_server, smtp_sink, fault_report, soak_minutes):
    if not soak_minutes:
        pytest.skip("the soak run: ./dev test tests/faults --soak [--soak-minutes N]")
    smtp_sink.handler.keep_data = False  # hundreds of thousands of messages
    count = RATE * 60 * soak_minutes
    settings_row(retry_delay=5)
    mailing_list = MailingListFactory()
    for first in range(0, count, 20_000):
        numbers = range(first, min(first + 20_000, count))
        bulk_audience(mailing_list, [f"soak-{n}@example.com" for n in numbers])
    campaign = CampaignFactory(lists=[mailing_list], rate_limit=RATE)
    processes.system(senders=SENDERS, concurrency=CONCURRENCY)
    faults = Faults(processes, smtp_sink, campaign, random.Random(SEED))
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))
    wait_until(lambda: len(smtp_sink.handler.received) >= RATE, 60, "sending under way")

    minutes: list[Minute] = []
    allowed = 0
    before = 0
    for minute in range(1, soak_minutes + 1):
        began = time.monotonic()
        fault, allows = "", 0
        if minute < soak_minutes and status(campaign) != "finished":
            # Strike at a random moment of the minute, then let it run to the minute's end.
            time.sleep(faults.rng.uniform(5, 30))
            fault, allows = faults.strike()
            allowed += allows
        time.sleep(max(60 - (time.monotonic() - began), 0))
        received = len(smtp_sink.handler.received)
        minutes.append(
            Minute(
                minute,
                fault,
                allows,
                received,
                round((received - before) / (time.monotonic() - began), 1),
                round(sender_rss_mb(processes), 1),
                round(time.monotonic() - started, 1),
            )
        )
        before = received
        print(minutes[-1], flush=True)  # progress, with -s

    wait_until(lambda: status(campaign) == "finished", 30 * 60, "the campaign to finish")
    seconds = time.monotonic() - started
    result = tally(smtp_sink, {f"soak-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"soak: {soak_minutes} min at {RATE}/s, a random fault a minute",
        result,
        expected=count,
        allowed=allowed,
        started=started,
    )
    fault_report.append({"scenario": "soak minute by minute", "minutes": minutes})
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates <= allowed
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (count, 0)
    # Memory is flat: the last third of the run's minutes sit where the middle third did
    # (the first minutes warm caches up; a restarted worker only starts lower).
    rss = [m.rss_mb for m in minutes]
    third = max(len(rss) // 3, 1)
    middle, last = statistics.median(rss[third : 2 * third]), statistics.median(rss[-third:])
    assert last <= middle * 1.15 + 20, (middle, last, rss)
    assert count / seconds > RATE * 0.75, count / seconds
