"""A finished campaign's figures from the ledger, kept (mailer.rollups)."""

from __future__ import annotations

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
