"""Segments: the conditions that narrow a campaign's lists. On attributes (`city` equals
`Lyon`), and on behaviour: received, opened or clicked (a campaign, a link, or anything in the
last N days), bounced, unsubscribed through a campaign, subscribed before or after a date,
and a random share of the audience (the samples of an A/B test). Each may be negated ("did
not open campaign X"). All of them must hold.

Each behaviour is a SQL condition on the subscriber `s`, with named parameters. Those on
this app's tables are here; the engine registers those on its own (the ledger: received;
bounces) in BEHAVIOUR_SQL when it loads, so that this app never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Behaviour:
    kind: str
    negate: bool = False
    campaign_id: int | None = None
    link: str = ""
    days: int | None = None
    value: str = ""


class Condition(models.Model):
    """Narrows a campaign's lists to subscribers for whom it holds; all must hold."""

    class Kind(models.TextChoices):
        ATTRIBUTE = "attribute", _("an attribute")
        RECEIVED = "received", _("received a campaign")
        OPENED = "opened", _("opened")
        CLICKED = "clicked", _("clicked")
        BOUNCED = "bounced", _("bounced (hard or soft)")
        SOFT_BOUNCED = "soft_bounced", _("soft-bounced")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed through a campaign")
        SUBSCRIBED_AFTER = "subscribed_after", _("subscribed after a date")
        SUBSCRIBED_BEFORE = "subscribed_before", _("subscribed before a date")
        SAMPLE = "sample", _("is in a random share (A/B test)")

    class Operator(models.TextChoices):
        EQUALS = "equals", _("equals")
        NOT_EQUALS = "not_equals", _("does not equal")
        CONTAINS = "contains", _("contains")
        GT = "gt", _("is greater than")
        LT = "lt", _("is less than")
        EXISTS = "exists", _("is set")
        NOT_EXISTS = "not_exists", _("is not set")

    campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="conditions",
    )
    kind = models.CharField(
        _("kind"),
        max_length=17,
        choices=Kind.choices,
        default=Kind.ATTRIBUTE,
        db_default="attribute",
    )
    negate = models.BooleanField(
        _("did not"),
        default=False,
        db_default=False,
        help_text=_("Holds when the subscriber did not."),
    )
    attribute = models.CharField(
        _("attribute"),
        max_length=100,
        blank=True,
        help_text=_("Attribute name, as the CSV column it came from, e.g. city."),
    )
    operator = models.CharField(
        _("operator"), max_length=10, choices=Operator.choices, default=Operator.EQUALS
    )
    value = models.CharField(
        _("value"),
        max_length=255,
        blank=True,
        help_text=_(
            "Compared as text; as numbers when both sides are numbers. Not used by "
            "'is set' and 'is not set'. A date (2026-03-01) for 'subscribed before/after'."
        ),
    )
    other = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("campaign"),
        help_text=_("Received, opened, clicked, bounced, unsubscribed: this campaign. Empty: any."),
    )
    link = models.CharField(
        _("link"),
        max_length=2000,
        blank=True,
        help_text=_("Clicked: this link only (its full URL)."),
    )
    days = models.PositiveIntegerField(
        _("days"), null=True, blank=True, help_text=_("In the last this many days. Empty: ever.")
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        if self.kind == self.Kind.ATTRIBUTE:
            return f"{self.attribute} {self.get_operator_display()} {self.value}".strip()
        did = "did not: " if self.negate else ""
        which = f" {self.other}" if self.other_id else ""
        when = f" in the last {self.days} days" if self.days else ""
        value = self.value
        if value and self.kind in (self.Kind.BOUNCED, self.Kind.SOFT_BOUNCED):
            value = f"since {value[:16].replace('T', ' ')}"
        return f"{did}{self.get_kind_display()}{which}{when} {value}".strip()

    def behaviour(self) -> Behaviour:
        return Behaviour(self.kind, self.negate, self.other_id, self.link, self.days, self.value)

    def clean(self) -> None:
        if self.kind != self.Kind.ATTRIBUTE:
            dated = (self.Kind.SUBSCRIBED_AFTER, self.Kind.SUBSCRIBED_BEFORE)
            if self.kind in dated and not _is_date(self.value):
                raise ValidationError({"value": _("Give the date as 2026-03-01.")})
            if self.kind == self.Kind.RECEIVED and self.other_id is None:
                raise ValidationError({"other": _("Choose the campaign.")})
            bounces = (self.Kind.BOUNCED, self.Kind.SOFT_BOUNCED)
            if self.kind in bounces and self.value and not _is_moment(self.value):
                raise ValidationError(
                    {
                        "value": _(
                            "Bounced since: give the moment as 2026-03-01 or 2026-03-01T09:00."
                        )
                    }
                )
            if self.kind == self.Kind.SAMPLE and not _is_sample(self.value):
                raise ValidationError(
                    {"value": _("A random share is seed:low:high, e.g. ab1:0:100 (0 to 1000).")}
                )
            return
        needs_value = self.operator not in (self.Operator.EXISTS, self.Operator.NOT_EXISTS)
        if needs_value and self.value == "" and self.operator != self.Operator.EQUALS:
            raise ValidationError({"value": _("Give the value to compare with.")})
        if not self.attribute.strip():
            raise ValidationError({"attribute": _("Give the attribute's name.")})


def _is_moment(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_sample(value: str) -> bool:
    parts = value.split(":")
    if len(parts) != 3 or not parts[0] or not all(p.isdigit() for p in parts[1:]):
        return False
    low, high = int(parts[1]), int(parts[2])
    return 0 <= low < high <= 1000


def _is_date(value: str) -> bool:
    parts = value.split("-")
    return len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 4


SqlFor = Callable[[Behaviour, int], tuple[str, dict[str, Any]]]
BEHAVIOUR_SQL: dict[str, SqlFor] = {}


def _recent(column: str, b: Behaviour, n: int, params: dict[str, Any]) -> str:
    if not b.days:
        return ""
    params[f"days{n}"] = b.days
    return f" AND {column} >= now() - %(days{n})s * interval '1 day'"


def _of_campaign(column: str, b: Behaviour, n: int, params: dict[str, Any]) -> str:
    if b.campaign_id is None:
        return ""
    params[f"other{n}"] = b.campaign_id
    return f" AND {column} = %(other{n})s"


def _opened(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    where = _of_campaign("o.campaign_id", b, n, params) + _recent("o.at", b, n, params)
    sql = f"EXISTS (SELECT 1 FROM campaigns_open o WHERE o.subscriber_id = s.id{where})"  # noqa: S608
    return sql, params


def _clicked(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    where = _of_campaign("c.campaign_id", b, n, params) + _recent("c.at", b, n, params)
    if b.link:
        params[f"link{n}"] = b.link
        links = f"SELECT id FROM campaigns_trackedlink WHERE url = %(link{n})s"  # noqa: S608
        where += f" AND c.link_id IN ({links})"
    sql = f"EXISTS (SELECT 1 FROM campaigns_click c WHERE c.subscriber_id = s.id{where})"  # noqa: S608
    return sql, params


def _unsubscribed(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    where = _of_campaign("u.campaign_id", b, n, params) + _recent("u.at", b, n, params)
    table = "campaigns_unsubscribe"
    sql = f"EXISTS (SELECT 1 FROM {table} u WHERE u.subscriber_id = s.id{where})"  # noqa: S608
    return sql, params


def _subscribed(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    sign = ">=" if b.kind == Condition.Kind.SUBSCRIBED_AFTER else "<"
    # On one of the campaign's lists, since (or before) the date.
    sql = f"""EXISTS (SELECT 1 FROM subscribers_subscription sub WHERE sub.subscriber_id = s.id
        AND sub.mailing_list_id IN (SELECT mailinglist_id FROM campaigns_campaign_lists
                                    WHERE campaign_id = %(campaign)s)
        AND sub.created_at {sign} %(date{n})s::date)"""  # noqa: S608
    return sql, {f"date{n}": b.value}


def _sample(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    """value "seed:low:high": the subscriber's place in 0..999, shuffled by the seed."""
    seed, low, high = b.value.split(":")
    place = f"(abs(hashtext(s.id::text || %(seed{n})s)) %% 1000)"
    sql = f"{place} >= %(low{n})s AND {place} < %(high{n})s"
    return sql, {f"seed{n}": seed, f"low{n}": int(low), f"high{n}": int(high)}


BEHAVIOUR_SQL.update(
    {
        Condition.Kind.OPENED: _opened,
        Condition.Kind.CLICKED: _clicked,
        Condition.Kind.UNSUBSCRIBED: _unsubscribed,
        Condition.Kind.SUBSCRIBED_AFTER: _subscribed,
        Condition.Kind.SUBSCRIBED_BEFORE: _subscribed,
        Condition.Kind.SAMPLE: _sample,
    }
)


def behaviour_sql(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    make = BEHAVIOUR_SQL.get(b.kind)
    if make is None:
        raise ValueError(f"unknown behaviour {b.kind!r}: is the engine (mailer) installed?")
    sql, params = make(b, n)
    return (f"NOT ({sql})" if b.negate else f"({sql})"), params
