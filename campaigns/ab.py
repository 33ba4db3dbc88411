"""A/B tests: two to five variants of a campaign's subject, sender or content, each sent to
an equal random share of a test part of its audience; the winner, by open or click rate, is
chosen after a set time (or by hand) and sent to the rest.

Each variant is a campaign of kind `variant` whose audience is the campaign's narrowed by a
`sample` condition: the subscriber's place in a shuffled 0 to 999 says which variant, if any,
they are in (disjoint by construction). The rest is the campaign itself, started with the
winner's content and the samples negated, so nobody gets two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SEPARATOR = " · variant "


class ABTest(models.Model):
    class Metric(models.TextChoices):
        OPENS = "opens", _("open rate")
        CLICKS = "clicks", _("click rate")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        TESTING = "testing", _("Testing")
        DECIDED = "decided", _("Winner sent to the rest")

    campaign = models.OneToOneField(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="ab_test",
        help_text=_("The campaign tested: the rest of its audience gets the winner."),
    )
    metric = models.CharField(
        _("metric"), max_length=6, choices=Metric.choices, default=Metric.OPENS
    )
    test_percent = models.PositiveSmallIntegerField(
        _("test percent"),
        default=20,
        validators=[MinValueValidator(2), MaxValueValidator(90)],
        help_text=_("Share of the audience that tests, split evenly between the variants."),
    )
    decide_after = models.PositiveIntegerField(
        _("decide after (seconds)"),
        default=4 * 3600,
        validators=[MinValueValidator(1)],
        help_text=_("From the start of the test until the winner is chosen (4 hours: 14400)."),
    )
    automatic = models.BooleanField(
        _("automatic"),
        default=True,
        help_text=_("Choose the winner and send it on its own; else by hand."),
    )
    status = models.CharField(
        _("status"), max_length=7, choices=Status.choices, default=Status.DRAFT
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    winner = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("winner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name, verbose_name_plural = _("A/B test"), _("A/B tests")

    def __str__(self) -> str:
        return f"A/B test of {self.campaign}"

    def due(self) -> bool:
        return (
            self.status == self.Status.TESTING
            and self.started_at is not None
            and timezone.now() >= self.started_at + timedelta(seconds=self.decide_after)
        )


class Variant(models.Model):
    """What one variant changes; empty fields keep the campaign's."""

    test = models.ForeignKey(
        ABTest, verbose_name=_("test"), on_delete=models.CASCADE, related_name="variants"
    )
    label = models.CharField(_("label"), max_length=1, help_text=_("A to E."))
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    from_email = models.CharField(_("sender"), max_length=320, blank=True)
    body = models.TextField(_("body"), blank=True)
    campaign = models.OneToOneField(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="variant",
        editable=False,
    )

    class Meta:
        ordering = ["test", "label"]
        constraints = [
            models.UniqueConstraint(fields=["test", "label"], name="one_variant_per_label")
        ]

    def __str__(self) -> str:
        return f"variant {self.label}"

    def clean(self) -> None:
        if self.label not in "ABCDE" or not self.label:
            raise ValidationError({"label": _("Label the variants A to E.")})


# --- The figures ------------------------------------------------------------------------


@dataclass
class Rate:
    label: str
    campaign_id: int | None
    sent: int
    hits: int

    @property
    def rate(self) -> float:
        return self.hits / self.sent if self.sent else 0.0

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """The Wilson score interval (95%): sound also for small counts and rates near 0."""
        n = self.sent
        if not n:
            return (0.0, 0.0)
        p = self.rate
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, centre - half), min(1.0, centre + half))


def p_value(a: Rate, b: Rate) -> float:
    """Two-sided p-value of a two-proportion z-test (1.0 when it cannot be told)."""
    if not a.sent or not b.sent:
        return 1.0
    pooled = (a.hits + b.hits) / (a.sent + b.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.sent + 1 / b.sent))
    if spread == 0:
        return 1.0
    z = abs(a.rate - b.rate) / spread
    return math.erfc(z / math.sqrt(2))


def verdict(rates: list[Rate]) -> str:
    """Which variant leads, and whether the lead is significant (p < 0.05)."""
    ranked = sorted(rates, key=lambda r: r.rate, reverse=True)
    if len(ranked) < 2 or not any(r.sent for r in ranked):
        return "Nothing sent yet."
    best, second = ranked[0], ranked[1]
    p = p_value(best, second)
    lead = f"Variant {best.label} leads ({best.rate:.1%} against {second.rate:.1%}, p = {p:.3f})"
    if p < 0.05:
        return f"{lead}: the difference is significant."
    return f"{lead}: the difference is not significant; more recipients would tell."
