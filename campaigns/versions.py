"""What each version of a campaign's content said. A campaign's content is fixed while it
sends; a paused campaign may be edited, and each edit that reaches recipients makes a new
version. Every sent message records the version it was built from (Delivery.content_version),
so the report can say which recipients got which."""

from __future__ import annotations

from django.db import models


class CampaignVersion(models.Model):
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=255)
    body = models.TextField()
    layout = models.TextField(blank=True, help_text="The layout's HTML as it was then.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="one_version_number")
        ]
        ordering = ["campaign", "number"]

    def __str__(self) -> str:
        return f"version {self.number} of campaign {self.campaign_id}"
