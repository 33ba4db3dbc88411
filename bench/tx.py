"""Transactional messages and webhooks: what `POST /api/tx` serves, how long a message takes
from the request to the SMTP server's 250 while a campaign sends at full speed, and how fast
webhook events go through the outbox.

    python -m bench.tx [--seconds 20] [--clients 8] [--recipients 200000] [--rate 20]

Starts its own PostgreSQL, Redis and Postfix smtp-sink (as `./dev bench` does), gunicorn with
3 workers as in compose, then:

1. `POST /api/tx` (one recipient, external mode) from `--clients` keep-alive clients for
   `--seconds`, nothing consuming the queue: the API's own requests a second and latency;
2. the engine as compose runs it (a sender with 2 slots, a dispatcher, a `worker` on
   `transactional`, a `background` worker on `default`, beat)
   sending a campaign of `--recipients` without limits, and meanwhile `--rate` transactional
   messages a second for `--seconds`: each message's time from its row's creation (inside the
   request) to the 250 (its `sent_at`), p50/p95, and the campaign's rate meanwhile;
3. webhooks: an endpoint on a local HTTP server answering 204, `POST /api/subscribers` from
   `--clients` clients for `--seconds` (each makes a `subscriber.created` event): events
   delivered a second, and each one's delay from the event to its delivery, p50/p95;
4. `--burst` events committed in one transaction: how fast the outbox drains them (the one
   `background` process), and their delays.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from bench import api
from bench.scenarios.common import (
    campaign_row,
    cancel_campaigns,
    create_campaign,
    db,
    import_audience,
    performance,
)
from bench.stack import PORTS, PYTHON, Stack
from devstack.processes import port_open, wait_for

RECEIVER_PORT = 8766
_counter = itertools.count()


def tx_body() -> bytes:
    n = next(_counter)
    return json.dumps(
        {
            "subscriber_email": f"buyer-{n}-{time.monotonic_ns()}@shop.example",
            "subscriber_mode": "external",
            "template_name": "Order confirmation",
            "data": {"order_id": n, "total": "42.00"},
        }
    ).encode()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)] * 1000, 1),
        "count": len(ordered),
    }


def post_at_rate(authorization: str, rate: float, seconds: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", api.PORT, timeout=30)
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        connection.request(
            "POST",
            "/api/tx",
            body=tx_body(),
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /api/tx answered {response.status}")
        sent += 1
        time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    connection.close()
    return sent


def tx_latencies(stack: Stack, since: float) -> tuple[list[float], int]:
    with db(stack) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM sent_at - created_at), status FROM mailer_txmessage"
            " WHERE created_at >= to_timestamp(%s)",
            [since],
        ).fetchall()
    return [float(r[0]) for r in rows if r[1] == "sent"], sum(r[1] != "sent" for r in rows)


def delivered(stack: Stack, since: float, wait: float) -> list[float]:
    """Once nothing is pending: each delivery's delay from its event, for events since."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with db(stack) as conn:
            (pending,) = conn.execute(
                "SELECT count(*) FROM webhooks_delivery WHERE status = 'pending'"
            ).fetchone()
        if not pending:
            break
        time.sleep(0.2)
    with db(stack) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM d.delivered_at - e.created_at) FROM webhooks_delivery d"
            " JOIN webhooks_event e ON e.id = d.event_id"
            " WHERE d.status = 'delivered' AND e.created_at >= to_timestamp(%s)",
            [since],
        ).fetchall()
    return [float(r[0]) for r in rows]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--burst", type=int, default=5000)
    args = parser.parse_args()
    stack = Stack()
    receiver = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        stack.start_servers()
        stack.start_sink()
        stack.env["API_RATE_LIMIT"] = "100000000"
        stack.env["ALLOWED_HOSTS"] = "127.0.0.1"
        stack.env["WEBHOOKS_ALLOW_PRIVATE_URLS"] = "true"
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.manage(
            "shell", "-c", "from subscribers.models import MailingList; "
            "from campaigns.models import Template; from webhooks.models import Endpoint; "
            "Endpoint.objects.all().delete(); "
            "MailingList.objects.get_or_create(pk=1, defaults={'name': 'Bench'}); "
            "Template.objects.update_or_create(name='Order confirmation', defaults={'kind': 'tx',"
            " 'subject': 'Order {{ tx.data.order_id }}', 'html': '<p>Order {{ tx.data.order_id }}"
            " of {{ tx.data.total }} is on its way.</p>'})",
        )  # fmt: skip
        name = f"bench-{int(time.time())}"
        token = stack.manage("create_api_user", name, "--role", "Admin").split()[-1]
        authorization = "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()
        gunicorn = str(Path(PYTHON).parent / "gunicorn")
        stack.start(
            "web", [gunicorn, "settings.wsgi", "--bind", f"127.0.0.1:{api.PORT}", "--workers", "3"]
        )
        wait_for(lambda: port_open(api.PORT), timeout=30, what="gunicorn")
        api.CALLS["POST /api/tx"] = ("POST", "/api/tx", tx_body)
        api.load("GET /api/lists", authorization, 2, 2)  # warm the workers up
        figures = api.load("POST /api/tx", authorization, args.seconds, args.clients)
        print(f"{'POST /api/tx (API alone)':36} {json.dumps(figures)}", flush=True)
        with db(stack) as conn:
            conn.execute("DELETE FROM mailer_txmessage")
        # The tasks queued for them too: the engine starts from an empty broker.
        redis.Redis(port=PORTS["redis"]).flushall()

        # 2. While a campaign sends at full speed.
        performance(stack)
        import_audience(stack, args.recipients, "bench", "t")
        campaign = create_campaign(stack, "full speed", ["bench"])
        stack.start_engine(1, 2, split=True)
        stack.manage("campaign", "start", str(campaign))
        wait_for(lambda: campaign_row(stack, campaign)[1] > 0, timeout=60, what="sending")
        time.sleep(3)  # past the start
        _, sent_before, _ = campaign_row(stack, campaign)
        since = time.time()
        started = time.monotonic()
        posted = post_at_rate(authorization, args.rate, args.seconds)
        window = time.monotonic() - started
        _, sent_after, _ = campaign_row(stack, campaign)
        time.sleep(5)  # the last messages' replies
        latencies, unsent = tx_latencies(stack, since)
        campaign_rate = round((sent_after - sent_before) / window, 1)
        cancel_campaigns(stack, campaign)
        result = {**percentiles(latencies), "posted": posted, "not_sent": unsent}
        print(
            f"{'POST /api/tx -> 250, campaign sending':36} {json.dumps(result)} "
            f"campaign meanwhile: {campaign_rate} messages/s",
            flush=True,
        )

        # 3. Webhooks through the outbox.
        stack.manage(
            "shell", "-c", "from webhooks.models import Endpoint; "
            f"Endpoint.objects.create(name='bench', url='http://127.0.0.1:{RECEIVER_PORT}/')",
        )  # fmt: skip
        since = time.time()
        figures = api.load("POST /api/subscribers", authorization, args.seconds, args.clients)
        delays = delivered(stack, since, wait=120)
        result = {
            **percentiles(delays),
            "events_per_second": round(len(delays) / args.seconds, 1),
            "api_requests_per_second": figures["requests_per_second"],
        }
        print(f"{'webhooks (subscriber.created)':36} {json.dumps(result)}", flush=True)

        # 4. The outbox's own pace: a burst of events committed at once, drained by the one
        # worker on `default`.
        since = time.time()
        stack.manage(
            "shell", "-c", "from django.db import transaction; "
            "from webhooks.outbox import emit\n"
            "with transaction.atomic():\n"
            f"    [emit('tx.sent', {{'id': n}}) for n in range({args.burst})]",
        )  # fmt: skip
        committed = time.time()
        delays = delivered(stack, since, wait=300)
        with db(stack) as conn:
            (last,) = conn.execute(
                "SELECT extract(epoch FROM max(delivered_at)) FROM webhooks_delivery"
            ).fetchone()
        result = {
            **percentiles(delays),
            "events_per_second": round(len(delays) / (float(last) - committed), 1),
        }
        print(f"{'webhooks, a burst of ' + str(args.burst):36} {json.dumps(result)}", flush=True)
    finally:
        receiver.shutdown()
        stack.shutdown()


if __name__ == "__main__":
    main()
