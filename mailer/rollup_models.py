"""What a finished campaign keeps: its figures from the ledger (mailer.rollups) and, later,
its ledger rows folded into blocks (mailer.folding)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _


class CampaignRollup(models.Model):
    campaign = models.OneToOneField(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="rollup",
    )
    figures = models.JSONField(_("figures"))
    made_at = models.DateTimeField(_("made at"), auto_now_add=True)

    class Meta:
        verbose_name, verbose_name_plural = _("campaign rollup"), _("campaign rollups")

    def __str__(self) -> str:
        return f"figures of campaign {self.campaign_id}"


class LedgerBlock(models.Model):
    """Up to `mailer.folding.BLOCK` consecutive rows of a finished campaign's ledger, folded
    into one row of arrays (mailer.folding): the i-th element of each array is the i-th row.
    PostgreSQL compresses each array as a whole, so a row costs a few dozen bytes instead of
    the hot table's 150 and its indexes' 70; the view `mailer_ledger` shows both forms as
    one ledger."""

    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="ledger_blocks",
        db_constraint=False,
        db_index=False,  # the unique (campaign, first id) index serves it
    )
    first_id = models.BigIntegerField(_("first delivery id"))
    last_id = models.BigIntegerField(_("last delivery id"))
    # The block's subscribers lie between these (a GiST index on the range finds the blocks
    # of one subscriber: a campaign's rows are written in subscriber order).
    min_subscriber = models.BigIntegerField(_("lowest subscriber id"), null=True)
    max_subscriber = models.BigIntegerField(_("highest subscriber id"), null=True)
    size = models.PositiveIntegerField(_("rows"))
    # Each row's delivery id less first_id; none when the ids run without a gap.
    offsets = ArrayField(models.IntegerField(), verbose_name=_("offsets"), null=True)
    subscriber_ids = ArrayField(models.BigIntegerField(null=True), verbose_name=_("subscribers"))
    emails = ArrayField(models.TextField(), verbose_name=_("addresses"))
    statuses = models.TextField(_("statuses"), help_text=_("One letter per row: s sent, f failed."))
    attempts = ArrayField(models.SmallIntegerField(), verbose_name=_("attempts"))
    sent_at = ArrayField(models.DateTimeField(null=True), verbose_name=_("sent at"))
    replies = ArrayField(models.TextField(), verbose_name=_("replies"))
    content_versions = ArrayField(
        models.IntegerField(null=True), verbose_name=_("content versions")
    )

    class Meta:
        verbose_name, verbose_name_plural = _("ledger block"), _("ledger blocks")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "first_id"], name="one_block_per_start")
        ]

    def __str__(self) -> str:
        return f"deliveries {self.first_id}-{self.last_id} of campaign {self.campaign_id}"
