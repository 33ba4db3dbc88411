from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns.models import Campaign
from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send_test,
    campaign_start,
)
from mailer.status import campaign_summary

ACTIONS = {
    "start": campaign_start,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}


class Command(BaseCommand):
    help = (
        "Operate campaigns: start, pause, resume or cancel one by id, or show the status of "
        "one or all (with --json for scripts)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=[*ACTIONS, "status", "test"])
        parser.add_argument(
            "ids", nargs="*", type=int, metavar="ID", help="Campaign ids (none: all, for status)."
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="Status as JSON.")
        parser.add_argument(
            "--to", default="", help="With test: comma-separated addresses to send a test to."
        )

    def _get(self, ident: int) -> Campaign:
        campaign = Campaign.objects.filter(pk=ident).first()
        if campaign is None:
            raise CommandError(
                f"There is no campaign with id {ident}; `campaign status` lists them."
            )
        return campaign

    def handle(self, *args, action: str, ids: list[int], as_json: bool, to: str, **options) -> None:
        if action == "status":
            self._status(ids, as_json=as_json)
            return
        if action == "test":
            if len(ids) != 1:
                raise CommandError("Give one campaign id, e.g. `campaign test 3 --to me@x.org`.")
            try:
                sent_to = campaign_send_test(campaign=self._get(ids[0]), to=to.split(","))
            except CampaignError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"Test of campaign {ids[0]} queued for {', '.join(sent_to)}.")
            return
        if not ids:
            raise CommandError(f"Give the campaign id, e.g. `campaign {action} 3`.")
        campaigns = [self._get(ident) for ident in ids]  # all must exist before acting on any
        failures = []
        done = []
        # One transaction, so that campaigns started together reach the dispatcher together
        # (and share the workers from their first second); each in its own savepoint, so
        # one refusal does not undo the others.
        with transaction.atomic():
            for campaign in campaigns:
                try:
                    with transaction.atomic():
                        done.append(ACTIONS[action](campaign=campaign))
                except CampaignError as error:
                    failures.append(str(error))
        for campaign in done:
            reason = f" ({campaign.status_reason})" if campaign.status_reason else ""
            self.stdout.write(
                f"Campaign {campaign.pk} ({campaign.name}) is {campaign.status}{reason}."
            )
        if failures:
            raise CommandError("\n".join(failures))

    def _status(self, ids: list[int], *, as_json: bool) -> None:
        if ids:
            campaigns = [self._get(ident) for ident in ids]
        else:
            campaigns = list(Campaign.objects.order_by("id"))
        rows = [campaign_summary(c) for c in campaigns]
        if as_json:
            self.stdout.write(json.dumps(rows[0] if len(ids) == 1 else rows, indent=2))
            return
        if not rows:
            self.stdout.write("No campaigns yet.")
            return
        for row in rows:
            line = (
                f"#{row['id']:<4} {row['name'][:30]:30} {row['status']:9} "
                f"{row['sent']:>7}/{row['total']:<7} sent, {row['failed']} failed, "
                f"{row['rate']:.1f}/s"
            )
            if row["waiting_reason"]:
                line += f" — {row['waiting_reason']}"
            elif row["limited_by"]:
                line += f" — limited by {row['limited_by'].replace('_', ' ')}"
            self.stdout.write(line)
