from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subscribers.imports import ImportFileError, ImportMode, ImportReport, subscribers_import_csv
from subscribers.models import MailingList

BAR = 30


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV file. Columns: email (required), name (optional); any "
        "other column is stored in the subscriber's attributes. Modes: subscribe (to --list), "
        "update (name and attributes of subscribers on file), blocklist. Invalid rows are "
        "reported with their line numbers and skipped; valid rows are imported."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="CSV file, UTF-8, header row first.")
        parser.add_argument(
            "--mode",
            choices=[m.value for m in ImportMode],
            default=ImportMode.SUBSCRIBE.value,
            help="subscribe (default), update or blocklist.",
        )
        parser.add_argument("--list", dest="list_name", help="Mailing list name (mode subscribe).")
        parser.add_argument(
            "--create-list", action="store_true", help="Create the list if it does not exist."
        )
        parser.add_argument(
            "--errors", type=Path, help="Also write the skipped lines to this CSV file."
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

    def handle(
        self,
        *args,
        file: Path,
        mode: str,
        list_name: str | None,
        create_list: bool,
        errors: Path | None,
        confirmed,
        **options,
    ):
        if not file.is_file():
            raise CommandError(f"{file}: no such file. Give the path of a CSV file.")
        mailing_list = self.mailing_list(mode, list_name, create_list)
        started = time.monotonic()
        size = max(file.stat().st_size, 1)
        interactive = sys.stdout.isatty()

        def progress(report: ImportReport) -> None:
            if not interactive:
                return
            share = min(report.bytes_read / size, 1.0)
            filled = round(share * BAR)
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (BAR - filled)}] {share:4.0%} "
                f"{report.rows:,} rows, {report.imported:,} imported, "
                f"{len(report.skipped):,} skipped",
                ending="",
            )
            self.stdout.flush()

        try:
            with file.open("rb") as stream:
                report = subscribers_import_csv(
                    stream=stream,
                    mailing_list=mailing_list,
                    mode=mode,
                    confirmed=confirmed,
                    progress=progress,
                )
        except ImportFileError as error:
            raise CommandError(f"{file}: {error} Nothing was imported.") from error
        if interactive:
            self.stdout.write("")
        for line, reason in report.skipped[:1000]:
            self.stderr.write(f"{file}:{line}: skipped: {reason}")
        if len(report.skipped) > 1000:
            self.stderr.write(f"... and {len(report.skipped) - 1000:,} more skipped lines.")
        if errors is not None and report.skipped:
            errors.write_text("".join(report.error_report_csv()), encoding="utf-8")
            self.stdout.write(f"Skipped lines written to {errors}.")
        target = f" into {mailing_list.name!r}" if mailing_list else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{mode}: {report.imported:,} subscribers{target} in "
                f"{time.monotonic() - started:.1f} s; {len(report.skipped):,} rows skipped."
            )
        )

    def mailing_list(self, mode: str, name: str | None, create: bool) -> MailingList | None:
        if mode != ImportMode.SUBSCRIBE:
            if name:
                raise CommandError(f"--list is for mode 'subscribe'; mode {mode!r} uses no list.")
            return None
        if not name:
            raise CommandError("Mode 'subscribe' needs --list NAME: the list to subscribe to.")
        mailing_list = MailingList.objects.filter(name=name).first()
        if mailing_list is None:
            if not create:
                raise CommandError(
                    f"There is no mailing list named {name!r}. Create it in the admin, "
                    "or add --create-list to create it now."
                )
            mailing_list = MailingList.objects.create(name=name)
            self.stdout.write(f"Created mailing list {name!r}.")
        return mailing_list
