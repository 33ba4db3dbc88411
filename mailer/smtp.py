"""SMTP servers, a per-process connection pool, and what each reply means for a delivery."""

from __future__ import annotations

import enum
import random
import smtplib
import ssl
from dataclasses import dataclass
from typing import Protocol

import structlog
from django.conf import settings

from mailer.credentials import plain_login_problem
from mailer.models import SmtpServer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    key: str
    name: str
    host: str
    port: int
    security: str
    username: str
    password: str
    timeout: float
    max_connections: int
    rate_limit: int | None
    weight: int = 1
    server_id: int | None = None

    @classmethod
    def from_model(cls, server: SmtpServer) -> ServerConfig:
        return cls(
            key=f"server-{server.pk}",
            name=server.name,
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            password=server.password(),
            timeout=server.timeout,
            max_connections=server.max_connections,
            rate_limit=server.rate_limit,
            weight=server.weight,
            server_id=server.pk,
        )

    def login_problem(self) -> str | None:
        return plain_login_problem(
            name=self.name, host=self.host, security=self.security, username=self.username
        )

    @classmethod
    def default(cls) -> ServerConfig:
        conf = settings.MAILER_DEFAULT_SMTP
        return cls(
            key="default",
            name="default (SMTP_URL)",
            host=conf["host"],
            port=conf["port"],
            security=conf["security"],
            username=conf["username"],
            password=conf["password"],
            timeout=20,
            max_connections=4,
            rate_limit=None,
        )


def choose_server(smtp_server_id: int | None) -> ServerConfig:
    """The campaign's own server, else a weighted pick among enabled ones, else SMTP_URL."""
    if smtp_server_id is not None:
        return ServerConfig.from_model(SmtpServer.objects.get(pk=smtp_server_id))
    servers = [ServerConfig.from_model(s) for s in SmtpServer.objects.filter(is_enabled=True)]
    if not servers:
        return ServerConfig.default()
    return random.choices(servers, weights=[s.weight for s in servers])[0]  # noqa: S311


@dataclass(frozen=True)
class CheckStep:
    ok: bool
    text: str


def check_server(config: ServerConfig) -> list[CheckStep]:
    """Connect, EHLO, STARTTLS and log in, step by step; stops at the first step that fails.

    Each failed step says what to check (used by `check_smtp` and the status page's button).
    """
    steps: list[CheckStep] = []
    if problem := config.login_problem():
        return [CheckStep(False, problem)]
    try:
        smtp = connect(config)
    except (OSError, smtplib.SMTPException) as error:
        return [CheckStep(False, f"connect: {error}. Is the host and port right, and reachable?")]
    try:
        steps.append(CheckStep(True, "connected"))
        code, reply = smtp.ehlo()
        if code != 250:
            steps.append(CheckStep(False, f"EHLO: {code} {reply.decode(errors='replace')}"))
            return steps
        extensions = ", ".join(sorted(smtp.esmtp_features)) or "none"
        steps.append(CheckStep(True, f"EHLO: extensions {extensions}"))
        if config.security == SmtpServer.Security.STARTTLS:
            try:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                steps.append(CheckStep(True, "STARTTLS"))
            except (OSError, smtplib.SMTPException) as error:
                steps.append(CheckStep(False, f"STARTTLS: {error}. Try security 'TLS' or 'none'."))
                return steps
        if config.username:
            try:
                smtp.login(config.username, config.password)
                steps.append(CheckStep(True, f"logged in as {config.username!r}"))
            except smtplib.SMTPException as error:
                steps.append(
                    CheckStep(
                        False,
                        f"login as {config.username!r}: {error}. Check the user name and the "
                        "environment variable named in the server's password variable.",
                    )
                )
        return steps
    except (OSError, smtplib.SMTPException) as error:
        steps.append(CheckStep(False, f"the server closed the session: {error}"))
        return steps
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


class Outcome(enum.StrEnum):
    SENT = "sent"
    # Try this recipient again later: 4xx replies, dropped connections, timeouts.
    TEMPORARY = "temporary"
    # Never retry this recipient: 5xx replies to its address or message.
    PERMANENT = "permanent"
    # The whole message, final dot included, reached the server, and then the connection
    # broke before its answer: it may well have been accepted (RFC 1047).
    UNKNOWN = "unknown"


# How a reply starts when the outcome is unknown (counted by mailer.batch and the report).
UNKNOWN_REPLY = "outcome unknown"


class Guard(Protocol):
    """What the sender checks around each message (mailer.batch: the batch's fence and
    journal). Raising from either leaves the message unsent: before MAIL FROM nothing was
    said; before the final dot, the connection is closed without it and the server drops
    the message (RFC 5321 4.1.1.4)."""

    def before_mail(self) -> None: ...

    def before_dot(self) -> None: ...


class _NoGuard:
    def before_mail(self) -> None:
        pass

    def before_dot(self) -> None:
        pass


NO_GUARD = _NoGuard()


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    reply: str
    # The connection broke, rather than the server answering: nothing about the recipient.
    connection_lost: bool = False


class ServerUnavailable(Exception):
    """The server cannot be used at all right now (cannot connect, refuses to log in)."""

    def __init__(self, message: str, *, authentication: bool = False) -> None:
        super().__init__(message)
        self.authentication = authentication


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"[:500]


def _classify(code: int, message: bytes | str) -> SendResult:
    outcome = Outcome.PERMANENT if 500 <= code < 600 else Outcome.TEMPORARY
    return SendResult(outcome, _reply(code, message))


def connect(config: ServerConfig) -> smtplib.SMTP:
    """An SMTP session to the server: plain, or TLS from the start for security "tls"."""
    if config.security == SmtpServer.Security.TLS:
        return smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
        )
    return smtplib.SMTP(config.host, config.port, timeout=config.timeout)


class Connection:
    """One SMTP session, reused for many messages."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.ended = False  # the current message's final dot was written

    def open(self) -> None:
        config = self.config
        if problem := config.login_problem():
            raise ServerUnavailable(problem, authentication=True)
        try:
            smtp = connect(config)
            if config.security == SmtpServer.Security.STARTTLS:
                smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo_or_helo_if_needed()
            if config.username:
                smtp.login(config.username, config.password)
        except smtplib.SMTPAuthenticationError as error:
            raise ServerUnavailable(
                f"SMTP server {config.name} refused the login for {config.username!r}: "
                f"{_reply(error.smtp_code, error.smtp_error)}. Check the username and the "
                "password variable of this server.",
                authentication=True,
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnavailable(
                f"Cannot connect to SMTP server {config.name} at {config.host}:{config.port}: "
                f"{error}"
            ) from error
        self.smtp = smtp
        self.pipelining = smtp.has_extn("pipelining")

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    def send(self, sender: str, recipient: str, data: bytes, guard: Guard = NO_GUARD) -> SendResult:
        """Send one message; the connection is closed (and reopened next time) on errors."""
        guard.before_mail()
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        self.ended = False
        try:
            if self.pipelining and sender.isascii() and recipient.isascii():
                return self._send_pipelined(smtp, sender, recipient, data, guard)
            code, message = smtp.mail(sender)
            if code != 250:
                # A refused sender says nothing about the recipient: try again later.
                smtp.rset()
                return SendResult(Outcome.TEMPORARY, "sender refused: " + _reply(code, message))
            code, message = smtp.rcpt(recipient)
            if code not in (250, 251):
                smtp.rset()
                return _classify(code, message)
            smtp.putcmd("data")
            code, message = smtp.getreply()
            if code != 354:
                smtp.rset()
                return _classify(code, message)
            code, message = self._end(smtp, data, guard)
            if code != 250:
                return _classify(code, message)
            return SendResult(Outcome.SENT, _reply(code, message))
        except smtplib.SMTPResponseException as error:
            self.close()
            return _classify(error.smtp_code, error.smtp_error)
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            self.close()
            if self.ended:
                return SendResult(
                    Outcome.UNKNOWN,
                    f"{UNKNOWN_REPLY}: the connection broke after the message was sent, before "
                    f"the server's answer ({error})"[:500],
                    True,
                )
            return SendResult(Outcome.TEMPORARY, f"connection lost: {error}"[:500], True)

    def _end(self, smtp: smtplib.SMTP, data: bytes, guard: Guard) -> tuple[int, bytes]:
        """Write the message and its final dot, once the guard allows; the server's answer."""
        body = _body(data)
        try:
            guard.before_dot()
        except BaseException:
            self.abort()
            raise
        self.ended = True  # from here on, a broken connection leaves the outcome unknown
        smtp.send(body + b".\r\n")
        return smtp.getreply()

    def abort(self) -> None:
        """Drop the connection without ending the message: the server discards it."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def _send_pipelined(
        self,
        smtp: smtplib.SMTP,
        sender: str,
        recipient: str,
        data: bytes,
        guard: Guard,
    ) -> SendResult:
        """MAIL, RCPT and DATA in one write (RFC 2920), then the message: two round trips
        instead of four, and no per-message regular expressions over the body."""
        smtp.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        mail = smtp.getreply()
        if mail[0] == 421:
            # The server is closing the session (RFC 5321 3.8) and may not answer the rest:
            # its reason ("too many messages") is what the sender needs to hear.
            self.abort()
            return SendResult(Outcome.TEMPORARY, "sender refused: " + _reply(*mail), True)
        rcpt = smtp.getreply()
        data_reply = smtp.getreply()
        if data_reply[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            # Some servers open DATA although the transaction already failed: close it empty.
            smtp.send(".\r\n")
            smtp.getreply()
        if mail[0] != 250:
            smtp.rset()
            return SendResult(Outcome.TEMPORARY, "sender refused: " + _reply(*mail))
        if rcpt[0] not in (250, 251):
            smtp.rset()
            return _classify(*rcpt)
        if data_reply[0] != 354:
            smtp.rset()
            return _classify(*data_reply)
        code, message = self._end(smtp, data, guard)
        if code != 250:
            return _classify(code, message)
        return SendResult(Outcome.SENT, _reply(code, message))


def _body(data: bytes) -> bytes:
    """The message as DATA carries it, without the final dot: dot-stuffed (RFC 5321 4.5.2),
    ending in a line break."""
    body = data.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body


class Pool:
    """Connections per server, kept open across batches within one worker process."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Connection]] = {}

    def acquire(self, config: ServerConfig) -> Connection:
        idle = self._idle.setdefault(config.key, [])
        while idle:
            connection = idle.pop()
            if connection.config == config:
                return connection
            connection.close()  # the server's settings changed since it was opened
        connection = Connection(config)
        connection.open()
        return connection

    def release(self, connection: Connection) -> None:
        idle = self._idle.setdefault(connection.config.key, [])
        if connection.smtp is not None and len(idle) < connection.config.max_connections:
            idle.append(connection)
        else:
            connection.close()

    def close_all(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


pool = Pool()
