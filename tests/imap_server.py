"""A real IMAP server for tests: pymap (an IMAP4rev1 server from PyPI) on loopback, with one
mailbox user held in memory. Tests put messages in with APPEND, as a mail server would
deliver them, and the code under test reads them over the network."""

from __future__ import annotations

import imaplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.smtp_sink import free_port

PYMAP = str(Path(sys.executable).parent / "pymap")


def mailbox_config(protocol: str, port: int, user: str, password: str) -> dict:
    """What settings.BOUNCE_MAILBOX holds for a plain-text mailbox on loopback."""
    return {
        "protocol": protocol,
        "security": "none",
        "host": "127.0.0.1",
        "port": port,
        "user": user,
        "password": password,
        "folder": "INBOX",
    }


class ImapServer:
    user = "bounces"
    password = "imap-test-password"

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> ImapServer:
        argv = [PYMAP, "--host", "127.0.0.1", "--port", str(self.port), "--no-tls", "dict"]
        argv += ["--demo-user", self.user, "--demo-password", self.password]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pymap exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pymap did not listen within 20 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    @property
    def config(self) -> dict:
        return mailbox_config("imap", self.port, self.user, self.password)

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(self.user, self.password)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            for raw in messages:
                status, _ = client.append(folder, None, None, raw)
                assert status == "OK", status
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        client = self.client()
        try:
            status, _ = client.select(folder, readonly=True)
            if status != "OK":
                return []
            _, found = client.uid("SEARCH", "ALL")
            uids = found[0].split() if found and found[0] else []
            raw = []
            for uid in uids:
                _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw += [item[1] for item in data if isinstance(item, tuple)]
            return raw
        finally:
            client.logout()
