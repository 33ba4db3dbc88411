from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subscribers.exports import subscribers_export_csv
from subscribers.models import MailingList, Subscriber


class Command(BaseCommand):
    help = (
        "Write subscribers as CSV (email, name, status, created_at, one column per attribute), "
        "streamed in constant memory; the file can be imported again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--list", dest="list_name", help="Only this list's subscribers.")
        parser.add_argument(
            "--status", choices=[s.value for s in Subscriber.Status], help="Only this status."
        )
        parser.add_argument("--output", "-o", type=Path, help="File to write (default: stdout).")

    def handle(self, *args, list_name: str | None, status: str | None, output, **options):
        mailing_list = None
        if list_name:
            mailing_list = MailingList.objects.filter(name=list_name).first()
            if mailing_list is None:
                raise CommandError(f"There is no mailing list named {list_name!r}.")
        subscribers = Subscriber.objects.all()
        if status:
            subscribers = subscribers.filter(status=status)
        rows = subscribers_export_csv(subscribers=subscribers, mailing_list=mailing_list)
        if output is None:
            for row in rows:
                sys.stdout.write(row)
            return
        count = -1
        with output.open("w", encoding="utf-8", newline="") as target:
            for row in rows:
                target.write(row)
                count += 1
        self.stderr.write(self.style.SUCCESS(f"Wrote {count:,} subscribers to {output}."))
