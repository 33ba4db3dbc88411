"""A real SMTP server for tests (aiosmtpd on loopback) that records what it receives.

Replies can be scripted per recipient, so tests can see how the sender treats 4xx and 5xx.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_to: str
    data: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def campaign(self) -> str:
        match = re.search(rb"^X-Campaign-ID: (\d+)", self.data, re.MULTILINE)
        return match.group(1).decode() if match else ""

    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Return an SMTP reply such as "550 no such user" to refuse a recipient, or None.
    rcpt_reply: Callable[[str], str | None] | None = None
    # Advertise PIPELINING (RFC 2920), as production servers and smtp-sink do, so the
    # sender's pipelined path is the one under test; False tests the one-command-at-a-time path.
    pipelining: bool = True
    # Return an SMTP reply to give instead of accepting a message, DROP to take it and cut
    # the connection before answering, or None to accept it.
    data_reply: Callable[[object], str | None] | None = None
    # Seconds to wait before answering each message (a slow server).
    delay: float = 0.0
    # Sessions that greeted the server (EHLO), to tell that nobody connected.
    greetings: int = 0
    # Keep each message's content; a long run (the soak) keeps only who got one and when.
    keep_data: bool = True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.greetings += 1
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply is not None and (reply := self.rcpt_reply(address)):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_reply is not None and (reply := self.data_reply(envelope)):
            if reply == DROP:
                # The server takes the message, then the connection breaks before its
                # answer: the sender cannot know that it went (it did, as with a real
                # server that queued it), and the tally counts it.
                self.keep(envelope)
                server.transport.close()
                return "421 closing"
            return reply
        self.keep(envelope)
        return "250 OK queued"

    def keep(self, envelope) -> None:
        data = envelope.content if self.keep_data else b""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append(Received(envelope.mail_from, rcpt, data))


DROP = "drop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    def __init__(self, *, password: str | None = None) -> None:
        """password: require AUTH and accept only this password (any user name)."""
        self.handler = Handler()
        options: dict = {}
        if password is not None:

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (
                    isinstance(auth_data, LoginPassword) and auth_data.password == password.encode()
                )
                return AuthResult(success=ok, handled=False)

            options = {
                "authenticator": authenticator,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self.options = options
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=free_port(), **options
        )

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Listen again on the same port after stop() (a server back from an outage)."""
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.controller.port, **self.options
        )
        self.controller.start()

    @property
    def port(self) -> int:
        return self.controller.port

    def recipients(self) -> Counter[str]:
        with self.handler.lock:
            return Counter(r.rcpt_to for r in self.handler.received)

    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)
