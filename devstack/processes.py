"""Background processes recorded in pid files, so that `down` stops exactly what `up` started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(check, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s{hint}")


@dataclass
class Service:
    """A long-running process in its own session, so that its whole group can be signalled."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    cwd: Path | None = None

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self) -> str:
        if pid := self.pid():
            return f"{self.name}: already running (pid {pid})"
        if self.port is not None and port_open(self.port):
            raise RuntimeError(
                f"{self.name}: port {self.port} is already in use by another program; "
                f"stop it or choose another port (see ./dev --help)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        self.pidfile.write_text(f"{process.pid}\n")
        return f"{self.name}: started (pid {process.pid}, log {self.log})"

    def stop(self, timeout: float = 20) -> str:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return f"{self.name}: not running"
        stop_group(pid, timeout=timeout)
        self.pidfile.unlink(missing_ok=True)
        return f"{self.name}: stopped (pid {pid})"


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_group(pgid: int, *, timeout: float) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `timeout` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_for(lambda: not group_members(pgid), timeout=5, what=f"process group {pgid} to exit")
