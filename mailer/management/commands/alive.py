"""Health checks for compose: `alive worker <node>` succeeds while the Celery worker named
<node> (e.g. sender@$(hostname)) has a fresh heartbeat in Redis; `alive beat` while the
dispatcher's tick ran within the last 30 seconds (beat sends one a second)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from mailer import dispatcher, heartbeats

BEAT_STALE_SECONDS = 30


class Command(BaseCommand):
    help = "Exit 0 if a worker's heartbeat (or the dispatcher's tick) is fresh, else 1."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["worker", "beat"])
        parser.add_argument("node", nargs="?", default="")

    def handle(self, *args, what: str, node: str, **options) -> None:
        if what == "worker":
            if not node:
                raise CommandError("Name the worker: alive worker sender@$(hostname).")
            names = {w["hostname"] for w in heartbeats.workers_online()}
            if node not in names:
                raise CommandError(
                    f"No heartbeat from {node} in the last {heartbeats.HEARTBEAT_TTL} s."
                )
            return
        last = dispatcher.last_tick()
        if last is None or time.time() - last > BEAT_STALE_SECONDS:
            raise CommandError(f"The dispatcher has not ticked in {BEAT_STALE_SECONDS} s.")
