"""Scenario 3: the peer, django-post-office, sending the same messages on the same machine."""

from __future__ import annotations

import time

import psycopg

from bench.stack import CELERY, PORTS, ROOT, STATE, Stack, cpu_seconds, server_processes


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
