from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subscribers.models import MailingList
from subscribers.services import ImportFileError, ImportReport, subscribers_import_csv


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV file into a mailing list. Columns: email (required), "
        "name (optional); any other column is stored in the subscriber's attributes. Invalid "
        "rows are reported with their line numbers and skipped; valid rows are imported."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="CSV file, UTF-8, header row first.")
        parser.add_argument("--list", required=True, dest="list_name", help="Mailing list name.")
        parser.add_argument(
            "--create-list", action="store_true", help="Create the list if it does not exist."
        )
        status = parser.add_mutually_exclusive_group()
        status.add_argument(
            "--confirmed",
            action="store_true",
            default=None,
            help="Import as confirmed (default on single opt-in lists).",
        )
        status.add_argument(
            "--unconfirmed",
            action="store_false",
            dest="confirmed",
            help="Import as unconfirmed (default on double opt-in lists).",
        )

    def handle(self, *args, file: Path, list_name: str, create_list: bool, confirmed, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file. Give the path of a CSV file.")
        mailing_list = MailingList.objects.filter(name=list_name).first()
        if mailing_list is None:
            if not create_list:
                raise CommandError(
                    f"There is no mailing list named {list_name!r}. Create it in the admin, "
                    "or add --create-list to create it now."
                )
            mailing_list = MailingList.objects.create(name=list_name)
            self.stdout.write(f"Created mailing list {list_name!r}.")
        started = time.monotonic()
        interactive = sys.stdout.isatty()

        def progress(report: ImportReport) -> None:
            if interactive:
                self.stdout.write(
                    f"\r{report.rows:,} rows read, {report.imported:,} imported", ending=""
                )

        try:
            with file.open("rb") as stream:
                report = subscribers_import_csv(
                    stream=stream, mailing_list=mailing_list, confirmed=confirmed, progress=progress
                )
        except ImportFileError as error:
            raise CommandError(f"{file}: {error} Nothing was imported.") from error
        if interactive:
            self.stdout.write("")
        for line, reason in report.skipped:
            self.stderr.write(f"{file}:{line}: skipped: {reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {report.imported:,} subscribers into {mailing_list.name!r} "
                f"in {time.monotonic() - started:.1f} s; {len(report.skipped):,} rows skipped."
            )
        )
