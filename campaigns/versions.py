"""What each version of a campaign's content said. A campaign's content is fixed while it
sends; a paused campaign may be edited, and each edit that reaches recipients makes a new
version. Every sent message records the version it was built from (Delivery.content_version),
so the report can say which recipients got which."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CampaignVersion(models.Model):
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="versions",
    )
    number = models.PositiveIntegerField(_("number"))
    subject = models.CharField(_("subject"), max_length=255)
    body = models.TextField(_("body"))
    layout = models.TextField(
        _("layout"), blank=True, help_text=_("The layout's HTML as it was then.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="one_version_number")
        ]
        ordering = ["campaign", "number"]

    def __str__(self) -> str:
        return f"version {self.number} of campaign {self.campaign_id}"
