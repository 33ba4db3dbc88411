"""What recipients did with a campaign: the links it tracks, and who opened, clicked or left
through it. Written in batches from Redis (opens, clicks) or once per subscriber."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class TrackedLink(models.Model):
    """A URL in a campaign's HTML, reached through the click-tracking redirect."""

    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="links",
    )
    url = models.URLField(_("URL"), max_length=2000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "url"], name="one_link_per_url")]

    def __str__(self) -> str:
        return self.url


class Open(models.Model):
    """A message opened (its tracking image loaded); written in batches from Redis."""

    campaign = models.ForeignKey(
        "campaigns.Campaign", verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="+"
    )
    subscriber_id = models.BigIntegerField(_("subscriber ID"), null=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber_id"], name="one_open_each")
        ]

    def __str__(self) -> str:
        return f"open of {self.campaign_id} by {self.subscriber_id} at {self.at:%Y-%m-%d %H:%M}"


class Click(models.Model):
    """A tracked link followed; written in batches from Redis."""

    campaign = models.ForeignKey(
        "campaigns.Campaign", verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="+"
    )
    link = models.ForeignKey(
        TrackedLink, verbose_name=_("link"), on_delete=models.CASCADE, related_name="clicks"
    )
    subscriber_id = models.BigIntegerField(_("subscriber ID"), null=True)
    at = models.DateTimeField(_("time"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "link", "subscriber_id"], name="one_click_each"
            )
        ]

    def __str__(self) -> str:
        return f"click on {self.link_id} by {self.subscriber_id} at {self.at:%Y-%m-%d %H:%M}"


class Unsubscribe(models.Model):
    """A subscriber who left through one campaign's unsubscribe link, counted once."""

    campaign = models.ForeignKey(
        "campaigns.Campaign", verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="+"
    )
    subscriber_id = models.BigIntegerField(_("subscriber ID"))
    at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "subscriber_id"], name="one_unsubscribe_per_campaign"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} left through campaign {self.campaign_id}"
