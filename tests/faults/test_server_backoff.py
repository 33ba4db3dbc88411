"""An SMTP server that takes less than its configured rate and says so ("421 4.7.0 Too many
messages, slow down"): the engine cuts that server's rate and lets it come back (AIMD), so
that it sends at about what the server takes, with few refusals, loses nobody, sends nobody
twice, uses up no recipient's attempts, and the status page says why."""

from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from mailer import backoff
from mailer.models import Delivery
from mailer.status import engine_status
from tests.e2e.helpers import campaign_with, settings_row, status, wait_until
from tests.faults.helpers import record, tally

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CONFIGURED = 100  # what the SMTP server row says it takes
TAKES = 40  # what it really takes, messages a second
COMPLAINT = "421 4.7.0 Too many messages, slow down"


def test_a_server_that_complains_of_too_much_mail_gets_less(
    processes, sink_server, smtp_sink, fault_report
):
    # Failed attempts would show here: a recipient refused five times would fail for good.
    settings_row(max_attempts=2, retry_delay=60)
    sink_server.rate_limit = CONFIGURED
    sink_server.save()
    count = 1200
    campaign = campaign_with(count, "aimd-", rate_limit=1000)
    accepted: deque[float] = deque()
    refused = {"n": 0}
    lock = threading.Lock()

    def at_most_takes_per_second(envelope) -> str | None:
        now = time.monotonic()
        with lock:
            while accepted and accepted[0] <= now - 1.0:
                accepted.popleft()
            if len(accepted) >= TAKES:
                refused["n"] += 1
                return COMPLAINT
            accepted.append(now)
            return None

    smtp_sink.handler.data_reply = at_most_takes_per_second
    processes.system(senders=1, concurrency=2)
    started = time.monotonic()
    processes.manage("campaign", "start", str(campaign.pk))

    seen_on_status: list[str] = []

    def throttled_and_said_so() -> bool:
        page = engine_status()
        server = next(s for s in page["smtp_servers"] if s["id"] == sink_server.pk)
        running = [c for c in page["running"] if c["id"] == campaign.pk]
        if server["backoff"] and running and running[0]["limited_by"] == "smtp_server":
            seen_on_status.append(running[0]["explanation"]["text"])
            return True
        return False

    wait_until(throttled_and_said_so, 30, "the status page to say the server throttles")
    wait_until(lambda: status(campaign) == "finished", 180, "the campaign to finish")
    seconds = time.monotonic() - started

    result = tally(smtp_sink, {f"aimd-{n}@example.com" for n in range(count)})
    record(
        fault_report,
        f"SMTP server takes {TAKES}/s of the {CONFIGURED}/s configured, says 421 beyond "
        f"({refused['n']} refusals)",
        result,
        expected=count,
        allowed=0,
        started=started,
    )
    assert not result.lost, sorted(result.lost)[:10]
    assert result.duplicates == 0
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.failed) == (count, 0)
    assert not Delivery.objects.filter(campaign=campaign, attempts__gt=1).exists(), (
        "a complaint must not use up a recipient's attempts"
    )
    # Sending at the configured 100/s against a server taking 40/s, three of every five
    # messages would be refused (and retried 60 s later). The back-off keeps refusals to
    # a small share and the campaign to about what the server takes.
    assert refused["n"] < 0.1 * count, refused["n"]
    # Halving and climbing back averages three quarters of what the server takes: about
    # 40 s for 1,200 at 40/s, and the start-up; a loaded machine gets some more room.
    assert seconds < count / TAKES * 3, seconds
    text = seen_on_status[0]
    assert text.startswith("Throttled by the server: ") and f"of {CONFIGURED}/s" in text, text
    assert COMPLAINT in text, text


def test_the_rate_comes_back_once_the_server_stops_complaining(sink_server, monkeypatch):
    """After a cut, with no complaint for HOLD_SECONDS, the rate climbs back to the server's
    limit and the back-off ends (the dispatcher's tick calls recover)."""
    from mailer.smtp import ServerConfig

    sink_server.rate_limit = CONFIGURED
    sink_server.save()
    server = ServerConfig.from_model(sink_server)
    assert backoff.cut(server, COMPLAINT) == CONFIGURED / 2
    assert backoff.recover({server.key: CONFIGURED}) == {server.key: CONFIGURED / 2}
    monkeypatch.setattr(backoff, "HOLD_SECONDS", 0.0)
    time.sleep(0.2)  # 0.2 s at 5% of 100/s per second: one more message a second
    rate = backoff.recover({server.key: CONFIGURED})[server.key]
    assert CONFIGURED / 2 < rate < CONFIGURED / 2 + 3, rate
    monkeypatch.setattr(backoff, "STEP", 100.0)
    time.sleep(0.05)
    assert backoff.recover({server.key: CONFIGURED}) == {server.key: CONFIGURED}
    assert backoff.states() == {}
