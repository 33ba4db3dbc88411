"""The send journal: which messages of a batch the SMTP server accepted, kept in Redis.

Results reach the database once per chunk. Without the journal, a worker killed between a
server's "250 OK" and the chunk's write would leave rows that were sent looking unsent, and
they would be sent again. So each accepted message's delivery id is appended to a list in
Redis straight after the 250 reply. The command is written to the socket on a connection
whose replies are turned off, which costs a few microseconds instead of a round trip; once
written, it reaches Redis even if the process is killed a moment later. When the dispatcher
recovers a dead batch's rows, those in its journal are marked sent, the rest go back to
`pending`.

Just before a message's final dot, the batch also journals that it is about to end the
message ("~id:time"). A batch that dies, or freezes and is taken for dead, after that point
may have had its message accepted without hearing so. Recovery leaves such a row with the
batch for UNKNOWN_GRACE seconds: a frozen process that wakes within that time reads the
server's answer and journals it (and records the row itself), and nothing is repeated.
After that the outcome is unknown: the row is sent again (Settings → Performance → *retry
unknown outcomes*, on by default, as MTAs do) or counted as sent.
"""

from __future__ import annotations

import time

import structlog
from redis.connection import Connection
from redis.exceptions import RedisError

from settings.redis import get_redis, key

log = structlog.get_logger(__name__)

# A journal outlives its batch only if the batch died; recovery reads and deletes it well
# within this time.
JOURNAL_TTL = 24 * 3600
# How long recovery leaves a dead batch's unanswered message with it: longer than an SMTP
# server's answer takes (SmtpServer.timeout, 20 s by default).
UNKNOWN_GRACE = 30


def journal_key(batch_id: str) -> str:
    return key("journal", batch_id)


class Journal:
    """A batch's journal, written on a connection of its own with replies turned off
    (CLIENT REPLY OFF): each entry is one write to the socket, with nothing to read back or
    parse, so journalling two entries per message costs less than one used to."""

    def __init__(self, batch_id: str) -> None:
        self.key = journal_key(batch_id)
        encoded = self.key.encode()
        self._prefix = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (len(encoded), encoded)
        self._connection: Connection | None = None
        self._started = False

    def _conn(self) -> Connection:
        if self._connection is None:
            connection = get_redis().connection_pool.get_connection()
            connection.send_command("CLIENT", "REPLY", "OFF")  # it answers nothing, not even this
            self._connection = connection
        return self._connection

    def note_sending(self, delivery_id: int) -> None:
        """Journal that the message is about to be ended (its final dot written)."""
        self._push(f"~{delivery_id}:{time.time():.3f}")

    def note_sent(self, delivery_id: int) -> None:
        """Journal one accepted message. With Redis unreachable the batch goes on: its chunk's
        results still reach the database, and the journal only matters if the process also
        dies before that write."""
        self._push(str(delivery_id))

    def _push(self, entry: str) -> None:
        value = entry.encode()
        try:
            connection = self._conn()
            connection.send_packed_command(
                [self._prefix + b"$%d\r\n%s\r\n" % (len(value), value)], check_health=False
            )
            if not self._started:
                connection.send_command("EXPIRE", self.key, JOURNAL_TTL)
                self._started = True
        except (RedisError, OSError) as error:
            log.warning("send journal unavailable", error=str(error))
            self._lost()

    def _lost(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
            get_redis().connection_pool.release(self._connection)
        self._connection = None
        self._started = False  # a new connection may find the journal gone: its expiry too

    def close(self, *, discard: bool) -> None:
        """Turn replies back on, discard the journal once recorded, give the connection back."""
        if self._connection is None:
            return
        try:
            self._connection.send_command("CLIENT", "REPLY", "ON")
            self._connection.read_response()  # +OK, after every entry before it was applied
            if discard and self._started:
                self._connection.send_command("DEL", self.key)
                self._connection.read_response()
        except (RedisError, OSError) as error:
            log.warning("send journal unavailable", error=str(error))
            self._lost()
        finally:
            if self._connection is not None:
                get_redis().connection_pool.release(self._connection)
            self._connection = None


def read(batch_id: str) -> tuple[set[int], dict[int, float]]:
    """(accepted, unanswered): the messages the server accepted, and those the batch ended
    (wrote the final dot of) without hearing the server's answer, with when it ended them."""
    raw = get_redis().lrange(journal_key(batch_id), 0, -1)
    entries = [e.decode() if isinstance(e, bytes) else str(e) for e in raw]
    accepted = {int(e) for e in entries if not e.startswith("~")}
    ended: dict[int, float] = {}
    for entry in entries:
        if entry.startswith("~"):
            delivery, _, at = entry[1:].partition(":")
            ended[int(delivery)] = float(at or 0)
    return accepted, {d: at for d, at in ended.items() if d not in accepted}


def sent_ids(batch_id: str) -> set[int]:
    return read(batch_id)[0]


def discard(batch_id: str) -> None:
    get_redis().delete(journal_key(batch_id))
