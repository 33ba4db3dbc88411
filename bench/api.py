"""What the REST API serves: requests a second and their latency, with the web app as compose
runs it (gunicorn, 3 workers) on this machine.

    python -m bench.api [--seconds 20] [--clients 8]

Starts its own PostgreSQL and Redis (as `./dev bench` does), an API user (Admin) and gunicorn,
then for each call keeps `--clients` connections busy for `--seconds` (keep-alive, one
request at a time each) and prints requests a second, p50 and p95 in milliseconds. The
load generator shares the two cores with the server, as a client on the same machine would.
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
from pathlib import Path

from bench.stack import PYTHON, Stack
from devstack.processes import port_open, wait_for

PORT = 8765
_counter = itertools.count()


def create_body() -> bytes:
    n = next(_counter)
    return json.dumps(
        {
            "email": f"bench-{n}-{time.monotonic_ns()}@example.com",
            "name": f"Bench {n}",
            "lists": [1],
            "attribs": {"city": "Lyon", "plan": "pro"},
        }
    ).encode()


CALLS = {
    "POST /api/subscribers": ("POST", "/api/subscribers", create_body),
    "GET /api/subscribers?per_page=20": ("GET", "/api/subscribers?per_page=20", None),
    "GET /api/lists": ("GET", "/api/lists", None),
}


def load(call: str, authorization: str, seconds: float, clients: int) -> dict[str, float]:
    method, path, body = CALLS[call]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        mine: list[float] = []
        while time.monotonic() < deadline:
            payload = body() if body else None
            started = time.perf_counter()
            connection.request(
                method,
                path,
                body=payload,
                headers={"Authorization": authorization, "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    failures.append(f"{response.status}")
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if failures:
        raise RuntimeError(f"{call}: {len(failures)} requests failed, e.g. {failures[:3]}")
    ordered = sorted(latencies)
    return {
        "requests_per_second": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95)] * 1000, 1),
        "requests": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    stack = Stack()
    try:
        stack.start_servers()
        # The bench measures the API, not its per-user limit.
        stack.env["API_RATE_LIMIT"] = "100000000"
        stack.env["ALLOWED_HOSTS"] = "127.0.0.1"
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.manage(
            "shell", "-c", "from subscribers.models import MailingList; "
            "MailingList.objects.get_or_create(pk=1, defaults={'name': 'Bench'})",
        )  # fmt: skip
        name = f"bench-{int(time.time())}"  # the benchmark's database outlives a run
        token = stack.manage("create_api_user", name, "--role", "Admin").split()[-1]
        authorization = "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()
        gunicorn = str(Path(PYTHON).parent / "gunicorn")
        stack.start(
            "web", [gunicorn, "settings.wsgi", "--bind", f"127.0.0.1:{PORT}", "--workers", "3"]
        )
        wait_for(lambda: port_open(PORT), timeout=30, what="gunicorn")
        load("GET /api/lists", authorization, 2, 2)  # warm the workers up
        for call in CALLS:
            figures = load(call, authorization, args.seconds, args.clients)
            print(f"{call:36} {json.dumps(figures)}", flush=True)
    finally:
        stack.shutdown()


if __name__ == "__main__":
    main()
