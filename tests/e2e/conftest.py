"""Real worker processes for end-to-end tests: `celery worker` and `celery beat` subprocesses
against the test database, the test Redis and the test SMTP sink."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.db import connection

if TYPE_CHECKING:
    from tests.faults.network import Host

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CELERY = str(Path(PYTHON).parent / "celery")


def database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgres://{params['USER']}{password}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    )


@dataclass
class Processes:
    env: dict[str, str]
    log_dir: Path
    running: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(
        self, name: str, *argv: str, ready: str | None = None, host: Host | None = None
    ) -> subprocess.Popen:
        """A process on this machine, or on one of the fault suite's hosts."""
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            host.wrap(list(argv)) if host else list(argv),
            cwd=ROOT,
            env={**self.env, **host.env} if host else self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if host:
            host.pids.append(process.pid)
        self.running[name] = process
        if ready:
            self.wait_for_log(name, ready)
        return process

    def worker(
        self,
        name: str,
        queues: str,
        concurrency: int = 2,
        wait: bool = True,
        host: Host | None = None,
    ) -> subprocess.Popen:
        argv = [PYTHON, "-m", "settings.worker", "-Q", queues, "-c", str(concurrency)]
        node = f"{name}@{host.name}" if host else f"{name}@%h"
        argv += ["-n", node, "-l", "info", "--without-mingle", "--without-gossip"]
        return self.start(name, *argv, ready=" ready." if wait else None, host=host)

    def system(self, senders: int = 2, concurrency: int = 2) -> None:
        """Sender workers, a dispatcher worker and beat, started together."""
        names = [f"sender{n}" for n in range(1, senders + 1)]
        for name in names:
            self.worker(name, "send", concurrency, wait=False)
        self.worker("dispatcher", "dispatch,transactional,default", 2, wait=False)
        for name in [*names, "dispatcher"]:
            self.wait_for_log(name, " ready.")
        self.beat()

    def beat(self, name: str = "beat", host: Host | None = None) -> subprocess.Popen:
        return self.start(
            name,
            CELERY,
            "-A",
            "settings",
            "beat",
            "-l",
            "info",
            "--schedule",
            str(self.log_dir / f"{name}-schedule"),
            host=host,
        )

    def web(self) -> str:
        """The web app (gunicorn) on a free port; returns its base URL, also its SITE_URL."""
        from tests.smtp_sink import free_port

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        self.env["SITE_URL"] = base
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.start("web", gunicorn, "settings.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1")
        self.wait_for_log("web", "Booting worker")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return base
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the web app did not listen on {port}:\n{self.log('web')}")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def wait_for_log(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            if self.running[name].poll() is not None:
                raise AssertionError(f"{name} exited early:\n{self.log(name)[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(
            f"{name} did not log {text!r} in {timeout} s:\n{self.log(name)[-3000:]}"
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.running[name].pid, sig)
        self.running[name].wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.running.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def processes(transactional_db, redis_prefix, tmp_path) -> Iterator[Processes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_KEY_PREFIX": redis_prefix,
        # Connections are opened per task; a small pool per process is plenty.
        "DB_POOL_MAX_SIZE": "2",
    }
    procs = Processes(env=env, log_dir=tmp_path)
    # The SMTP sink that stamps each message is a thread of this process, whose heap has
    # grown through the whole suite: a full collection of it would stop the sink for as long,
    # stalling whichever chunks are in flight and charging that stall to their campaigns.
    # What the earlier tests left is collected now and frozen out of later collections.
    gc.collect()
    gc.freeze()
    yield procs
    procs.stop_all()
