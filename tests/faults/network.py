"""Separate "hosts" for the fault suite: each a Linux network namespace with its own hostname,
joined to the machine by a veth pair on one bridge, so that its workers reach PostgreSQL,
Redis and the SMTP sink only over that link, and the link can be cut.

The servers listen on 127.0.0.1 only (PostgreSQL trusts local connections; it must not listen
on more). A forwarder on the bridge address relays each service port to 127.0.0.1: a host's
traffic crosses its veth link and the bridge, which is what a cut interrupts.

Where namespaces cannot be made (not root, no `ip`, no kernel support), `Network.open` raises
NamespacesUnavailable with the reason; the tests then run each host as its own process
group with its own Celery hostname, and a cut stops (SIGSTOP) the host's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class NamespacesUnavailable(RuntimeError):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespacesUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


@dataclass
class Host:
    index: int
    name: str  # also its hostname
    namespace: str | None  # None: a process group on this machine's own network
    link: str | None  # the veth end on the bridge side
    pids: list[int] = field(default_factory=list)  # process groups started for this host
    env: dict[str, str] = field(default_factory=dict)  # where it finds the shared servers

    def wrap(self, argv: list[str]) -> list[str]:
        """The command run on this host, under its own hostname."""
        if self.namespace is None:
            return argv
        return [
            "ip", "netns", "exec", self.namespace,
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *argv,
        ]  # fmt: skip


class Network:
    """A bridge with hosts on it; `address` is where a host finds the shared servers."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.tag = f"{os.getpid() % 100000}"
        self.subnet = 10 + os.getpid() % 200
        self.bridge = f"mb{self.tag}"
        self.address = f"10.213.{self.subnet}.1"
        self.hosts: list[Host] = []
        self.namespaces = False
        self.forwarder: subprocess.Popen | None = None

    def open(self) -> None:
        if os.geteuid() != 0:
            raise NamespacesUnavailable("network namespaces need root")
        if shutil.which("ip") is None or shutil.which("unshare") is None:
            raise NamespacesUnavailable("`ip` (iproute2) or `unshare` (util-linux) is missing")
        _ip("link", "add", self.bridge, "type", "bridge")
        self.namespaces = True
        _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self.forwarder = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.network", self.address, *map(str, self.ports)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.forwarder.stdout is not None
        line = self.forwarder.stdout.readline()
        if not line.startswith("listening"):
            raise NamespacesUnavailable(f"the forwarder did not start: {line!r}")

    def add_host(self) -> Host:
        index = len(self.hosts) + 1
        name = f"host{index}"
        if not self.namespaces:
            host = Host(index, name, None, None)
        else:
            namespace, link, inner = f"mn{self.tag}-{index}", f"mv{self.tag}h{index}", "eth0"
            _ip("netns", "add", namespace)
            _ip("link", "add", link, "type", "veth", "peer", "name", f"mv{self.tag}n{index}")
            _ip("link", "set", f"mv{self.tag}n{index}", "netns", namespace)
            _ip("-n", namespace, "link", "set", f"mv{self.tag}n{index}", "name", inner)
            _ip(
                "-n",
                namespace,
                "addr",
                "add",
                f"10.213.{self.subnet}.{10 + index}/24",
                "dev",
                inner,
            )
            _ip("-n", namespace, "link", "set", inner, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            host = Host(index, name, namespace, link)
        self.hosts.append(host)
        return host

    def cut(self, host: Host) -> None:
        """The host's network fails: nothing goes in or out (no resets: packets are lost)."""
        if host.link is not None:
            _ip("link", "set", host.link, "down")
        else:
            for pid in host.pids:
                os.killpg(pid, signal.SIGSTOP)

    def restore(self, host: Host) -> None:
        if host.link is not None:
            _ip("link", "set", host.link, "up")
        else:
            for pid in host.pids:
                os.killpg(pid, signal.SIGCONT)

    def close(self) -> None:
        for host in self.hosts:
            if host.namespace is None:
                for pid in host.pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGCONT)
            else:
                subprocess.run(["ip", "netns", "del", host.namespace], check=False)
        if self.forwarder is not None:
            self.forwarder.terminate()
            self.forwarder.wait(timeout=10)
        if self.namespaces:
            subprocess.run(["ip", "link", "del", self.bridge], check=False)


# --- The forwarder: python -m tests.faults.network ADDRESS PORT... -----------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _relay(port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return handle


async def _serve(address: str, ports: list[int]) -> None:
    servers = [await asyncio.start_server(_relay(p), address, p) for p in ports]
    print("listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], [int(p) for p in sys.argv[2:]]))
