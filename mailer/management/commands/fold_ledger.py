"""`fold_ledger`: fold the ledger of finished campaigns now (mailer.folding), rather than
waiting for the hourly task and LEDGER_FOLD_AFTER_DAYS: `fold_ledger --campaign 12`, or
`fold_ledger --due` for every campaign that is due."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from mailer import folding


class Command(BaseCommand):
    help = "Fold finished campaigns' ledger rows into compact blocks."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--campaign", type=int, action="append", help="a campaign's id")
        which.add_argument("--due", action="store_true", help="every campaign that is due")

    def handle(self, *args, campaign: list[int] | None, due: bool, **options) -> None:
        for campaign_id in campaign or folding.due():
            started = time.monotonic()
            try:
                moved = folding.fold(campaign_id)
            except (ValueError, Campaign.DoesNotExist) as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"campaign {campaign_id}: {moved} rows folded in {time.monotonic() - started:.1f} s"
            )
