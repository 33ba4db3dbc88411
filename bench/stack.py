"""What a benchmark run needs: PostgreSQL, Redis, Postfix's smtp-sink, and our processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from devstack.processes import port_open, wait_for
from devstack.servers import Postgres, redis_service, wait_for_redis

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MAILER_STATE_DIR", ROOT / ".state")) / "bench"
PYTHON = sys.executable
CELERY = str(Path(PYTHON).parent / "celery")

PORTS = {"postgres": 55434, "redis": 56381, "sink": 2701}


def smtp_sink_binary() -> tuple[Path, dict[str, str]]:
    """Postfix's smtp-sink, which needs no Postfix daemon: the system's, or unpacked from
    Debian's package into the state folder (apt-get download needs no installation)."""
    system = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if system:
        return Path(system), {}
    root = STATE / "postfix"
    binary = root / "usr" / "sbin" / "smtp-sink"
    if not binary.exists():
        download = STATE / "download"
        download.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["apt-get", "download", "postfix"], cwd=download, capture_output=True, text=True
        )
        if result.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            result = subprocess.run(
                ["apt-get", "download", "postfix"], cwd=download, capture_output=True, text=True
            )
        packages = sorted(download.glob("postfix_*.deb"))
        if not packages:
            raise RuntimeError(
                "Postfix's smtp-sink is needed as the SMTP target (a Python sink would measure "
                f"itself). `apt-get download postfix` failed: {result.stderr.strip()}. "
                "Install the Debian package postfix, or put smtp-sink on the PATH."
            )
        subprocess.run(["dpkg-deb", "-x", str(packages[-1]), str(root)], check=True)
    return binary, {"LD_LIBRARY_PATH": str(root / "usr" / "lib" / "postfix")}


@dataclass
class Stack:
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    postgres: Postgres | None = None

    def start_servers(self) -> None:
        shutil.rmtree(STATE / "run", ignore_errors=True)
        run = STATE / "run"
        run.mkdir(parents=True, exist_ok=True)
        self.postgres = Postgres(STATE / "postgres", PORTS["postgres"], run / "postgres.log")
        print(self.postgres.start())
        self.postgres.create_database("mailer")
        self.postgres.create_database("peer")
        redis = redis_service(
            run_dir=run, data_dir=STATE / "redis", port=PORTS["redis"], persistent=False
        )
        print(redis.start())
        wait_for_redis(PORTS["redis"], redis.log)
        self.redis = redis
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "SECRET_KEY": "bench-" + "x" * 50,
            "DATABASE_URL": self.postgres.url("mailer"),
            "REDIS_URL": f"redis://127.0.0.1:{PORTS['redis']}/0",
            "SMTP_URL": f"smtp://127.0.0.1:{PORTS['sink']}",
            "DEFAULT_FROM_EMAIL": "Bench <bench@example.com>",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_MAX_SIZE": "2",
        }

    def start_sink(self) -> None:
        binary, extra_env = smtp_sink_binary()
        self.stop("sink")
        # -c: count messages (we only need it to accept them); 1000: listen backlog.
        argv = [str(binary), "-u", "nobody", f"127.0.0.1:{PORTS['sink']}", "1000"]
        self.start("sink", argv, env={**os.environ, **extra_env})
        wait_for(lambda: port_open(PORTS["sink"]), timeout=10, what="smtp-sink")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        log = (STATE / "run" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def worker(self, name: str, queues: str, concurrency: int) -> None:
        self.start(
            name,
            [
                PYTHON,
                "-m",
                "settings.worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
            ],
        )

    def wait_ready(self, names: list[str]) -> None:
        for name in names:
            log = STATE / "run" / f"{name}.log"
            wait_for(
                lambda log=log: " ready." in log.read_text(errors="replace"),
                timeout=60,
                what=name,
                log=log,
            )

    def start_engine(self, senders: int, concurrency: int, split: bool = False) -> list[str]:
        """Senders, a dispatcher and beat; `split`: the other queues on workers of their own,
        as compose runs them (`worker` on transactional, `background` on default)."""
        names = [f"sender{n}" for n in range(1, senders + 1)]
        for name in names:
            self.worker(name, "send", concurrency)
        others = ["dispatcher"]
        if split:
            self.worker("dispatcher", "dispatch", 2)  # as compose runs it
            self.worker("worker", "transactional", 2)
            self.worker("background", "default", 1)
            others += ["worker", "background"]
        else:
            self.worker("dispatcher", "dispatch,transactional,default", 1)
        self.wait_ready([*names, *others])
        self.start(
            "beat",
            [
                CELERY,
                "-A",
                "settings",
                "beat",
                "-l",
                "warning",
                "--schedule",
                str(STATE / "run" / "celerybeat-schedule"),
            ],
        )
        return names

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_engine(self) -> None:
        for name in [n for n in self.processes if n != "sink"]:
            self.stop(name)

    def tree(self, name: str) -> list[psutil.Process]:
        root = psutil.Process(self.processes[name].pid)
        return [root, *root.children(recursive=True)]

    def shutdown(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self.postgres:
            print(self.postgres.stop())
        if getattr(self, "redis", None):
            print(self.redis.stop())


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def server_processes(stack: Stack) -> list[psutil.Process]:
    """PostgreSQL (all its backends) and Redis: the shared servers our pipeline loads."""
    found = []
    pg = stack.postgres.pid() if stack.postgres else None
    if pg:
        root = psutil.Process(pg)
        found += [root, *root.children(recursive=True)]
    redis_pid = stack.redis.pid() if getattr(stack, "redis", None) else None
    if redis_pid:
        found.append(psutil.Process(redis_pid))
    return found


def wait(seconds: float) -> None:
    time.sleep(seconds)
