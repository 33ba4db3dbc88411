"""A sender asked to stop gives its rows back at once.

`docker stop`, a scale-down or `./dev down` sends SIGTERM. Celery's main process then stops
taking tasks and waits for the running ones, and a batch's turn lasts up to 20 s: the rows of
its current chunk would stay claimed, and it would claim more, until the turn ends (or, once
the grace period runs out, until SIGKILL and the dead-batch recovery a few seconds later).
Instead every batch of the worker is told: it ends the message it is writing, records what
it sent, gives the rest of its chunk back to pending and claims nothing more, within about a
message's time.

How a batch hears it. The main process answers SIGTERM (Celery's `worker_shutting_down`) by
sending SIGUSR2 to its pool processes, whose handler only raises a flag (`docker stop`
signals the main process alone). When the whole process group gets SIGTERM (`./dev down`,
systemd), a pool process running a batch takes it as the same notice and ends when the
batch has given its rows back (its main process is stopping too); an idle one ends at once,
as before. With the solo pool the batch runs in the main process, which raises the flag for
itself.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import psutil

NOTICE = signal.SIGUSR2

_requested = False
# While a batch runs in the main thread: SIGTERM's handler before the batch put its own, and
# whether SIGTERM came meanwhile.
_previous: Any = signal.SIG_DFL
_terminated = False


def requested() -> bool:
    """Whether this process was asked to stop: a batch takes no more rows."""
    return _requested


def request() -> None:
    global _requested
    _requested = True


@contextmanager
def batch_running() -> Iterator[None]:
    """While a batch runs, SIGTERM to this process asks it to stop; once the batch has given
    its rows back, the signal is delivered again, to the handler that was there before
    (billiard's, which ends a pool process; Celery's, in a solo worker's main process)."""
    global _previous, _terminated
    # Signal handlers belong to the main thread (a threads pool runs batches in others,
    # which only ever hear of a stop through `notify_pool`).
    own = threading.current_thread() is threading.main_thread()
    if own:
        _previous = signal.signal(signal.SIGTERM, _on_terminate)
    try:
        yield
    finally:
        if own:
            signal.signal(signal.SIGTERM, _previous)
            if _terminated:
                _terminated = False
                os.kill(os.getpid(), signal.SIGTERM)


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    global _terminated
    if _terminated:
        # A second SIGTERM: what it would have done, at once, rows or not.
        signal.signal(signal.SIGTERM, _previous)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    _terminated = True
    request()


def _on_notice(signum: int, frame: FrameType | None) -> None:
    request()


def install_in_pool_process() -> None:
    """In each pool process as it starts (Celery's `worker_process_init`): the main process's
    notice raises the flag."""
    signal.signal(NOTICE, _on_notice)


def notify_pool() -> int:
    """In the main process as the worker begins to stop: tell this process and its pool
    processes; returns how many pool processes were told."""
    request()
    told = 0
    for child in psutil.Process().children():
        try:
            os.kill(child.pid, NOTICE)
        except ProcessLookupError:
            continue
        told += 1
    return told
