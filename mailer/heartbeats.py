"""Who is alive: worker processes announce themselves in Redis with a short expiry.

Two kinds of record, both refreshed by a daemon thread every HEARTBEAT_EVERY seconds and
expiring after HEARTBEAT_TTL seconds without a refresh:

- one per Celery worker (the parent process): host, pid, queues and concurrency, so the
  dispatcher knows how many send slots are online and the status page can list workers;
- one per process that runs batches (a prefork child), so that rows claimed by a batch whose
  process was killed are recovered within seconds instead of when its lease runs out.

Celery's own worker events and `inspect` say which workers answer, not which prefork child
died holding which batch, nor within seconds; hence these records.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from typing import Any

import psutil
import structlog

from settings.redis import get_redis, key, text

log = structlog.get_logger(__name__)

HEARTBEAT_EVERY = 2
HEARTBEAT_TTL = 8


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_key(ident: str) -> str:
    return key("process", ident)


def _worker_key(hostname: str) -> str:
    return key("worker", hostname)


def workers_set() -> str:
    return key("workers")


class _Beat(threading.Thread):
    def __init__(self, write) -> None:
        super().__init__(daemon=True, name="mailer-heartbeat")
        self.write = write
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.write()
            except Exception:  # a Redis blip must not kill the thread; the next beat retries
                log.warning("heartbeat failed", exc_info=True)
            self.stopped.wait(HEARTBEAT_EVERY)


_process_beat: tuple[int, _Beat] | None = None


def ensure_process_heartbeat() -> str:
    """Start this process's heartbeat once (again after a fork); returns the process id."""
    global _process_beat
    ident = process_id()
    if _process_beat is not None and _process_beat[0] == os.getpid():
        return ident

    def write() -> None:
        beat_now(ident)

    write()
    beat = _Beat(write)
    beat.start()
    _process_beat = (os.getpid(), beat)
    return ident


def beat_now(ident: str) -> None:
    """Say this process is alive now (the heartbeat thread does it every few seconds)."""
    get_redis().set(_process_key(ident), str(time.time()), ex=HEARTBEAT_TTL)


def queue_beat(pipe, ident: str) -> None:
    """The same, as part of a caller's pipeline."""
    pipe.set(_process_key(ident), str(time.time()), ex=HEARTBEAT_TTL)


def processes_alive(idents: list[str]) -> dict[str, bool]:
    if not idents:
        return {}
    values = get_redis().mget([_process_key(i) for i in idents])
    return {ident: value is not None for ident, value in zip(idents, values, strict=True)}


_worker_beat: _Beat | None = None


class _Usage:
    """Memory and CPU of a worker: its own process and its pool's children together."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.last: tuple[float, float] | None = None

    def sample(self) -> dict[str, Any]:
        processes = [self.process]
        with contextlib.suppress(psutil.Error):  # the worker is shutting down
            processes += self.process.children()
        rss, cpu_seconds, children = 0, 0.0, []
        for process in processes:
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    cpu_seconds += times.user + times.system
            except psutil.Error:
                continue  # a child that just exited
            if process is not self.process:
                children.append(process.pid)
        now = time.monotonic()
        # CPU as a share of one core since the previous beat (children that exited in
        # between take their time with them, so this can read a little low, never high).
        cpu = None
        if self.last is not None and now > self.last[0]:
            cpu = max(cpu_seconds - self.last[1], 0.0) / (now - self.last[0]) * 100
        self.last = (now, cpu_seconds)
        return {
            "rss_bytes": rss,
            "cpu_percent": round(cpu, 1) if cpu is not None else None,
            "children": children,
        }


def start_worker_heartbeat(
    *, hostname: str, queues: list[str], concurrency: int, pool: str
) -> None:
    global _worker_beat
    record = {
        "hostname": hostname,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": concurrency,
        "pool": pool,
        "started_at": time.time(),
    }
    name = _worker_key(hostname)
    usage = _Usage()

    def write() -> None:
        current = {**record, **usage.sample(), "seen_at": time.time()}
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(name, json.dumps(current), ex=HEARTBEAT_TTL)
        pipe.sadd(workers_set(), hostname)
        pipe.execute()

    write()
    _worker_beat = _Beat(write)
    _worker_beat.start()


def stop_worker_heartbeat(hostname: str) -> None:
    if _worker_beat is not None:
        _worker_beat.stopped.set()
    client = get_redis()
    client.delete(_worker_key(hostname))
    client.srem(workers_set(), hostname)


def workers_online() -> list[dict[str, Any]]:
    client = get_redis()
    hostnames = sorted(text(m) or "" for m in client.smembers(workers_set()))
    if not hostnames:
        return []
    values = client.mget([_worker_key(h) for h in hostnames])
    online = []
    for hostname, value in zip(hostnames, values, strict=True):
        if value is None:
            client.srem(workers_set(), hostname)  # expired: the worker is gone
        else:
            online.append(json.loads(value))
    return online


def send_slots_online() -> int:
    """Parallel batch slots of the workers that consume the `send` queue."""
    return sum(w["concurrency"] for w in workers_online() if "send" in w["queues"])
