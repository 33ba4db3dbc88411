"""A/B test actions of the admin and the API: start the test, read the figures, send the
winner to the rest (chosen by hand, or by the engine's tick once the test is due)."""

from __future__ import annotations

import structlog
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.ab import SEPARATOR, ABTest, Rate, Variant
from campaigns.models import Campaign, Click, Condition, Open
from campaigns.services import CampaignError, campaign_clone, campaign_start

log = structlog.get_logger(__name__)


def ab_start(*, test: ABTest) -> ABTest:
    """Make each variant's campaign (the campaign with the variant's changes, to its share
    of the test part) and start them; the campaign itself waits for the winner."""
    campaign = test.campaign
    variants = list(test.variants.all())
    if not 2 <= len(variants) <= 5:
        raise CampaignError(
            _("An A/B test has 2 to 5 variants; this one has %(count)s.") % {"count": len(variants)}
        )
    if campaign.status != Campaign.Status.DRAFT or test.status != ABTest.Status.DRAFT:
        raise CampaignError(
            _("Campaign %(campaign_pk)s (%(campaign)s) has started already; test a draft.")
            % {"campaign_pk": campaign.pk, "campaign": campaign.name}
        )
    width = sample_width(test, len(variants))
    with transaction.atomic():
        for n, variant in enumerate(variants):
            copy = campaign_clone(
                campaign=campaign, name=f"{campaign.name}{SEPARATOR}{variant.label}"
            )
            Campaign.objects.filter(pk=copy.pk).update(
                kind=Campaign.Kind.VARIANT,
                share_group=f"ab:{test.pk}",
                subject=variant.subject or campaign.subject,
                from_email=variant.from_email or campaign.from_email,
                body=variant.body or campaign.body,
            )
            copy.refresh_from_db()
            copy.conditions.create(
                kind=Condition.Kind.SAMPLE, value=f"ab{test.pk}:{n * width}:{(n + 1) * width}"
            )
            Variant.objects.filter(pk=variant.pk).update(campaign=copy)
            campaign_start(campaign=copy)
        changed = ABTest.objects.filter(pk=test.pk, status=ABTest.Status.DRAFT).update(
            status=ABTest.Status.TESTING, started_at=timezone.now()
        )
        if not changed:
            raise CampaignError(_("The test was started meanwhile."))
    log.info("ab test started", test_id=test.pk, campaign_id=campaign.pk)
    test.refresh_from_db()
    return test


def sample_width(test: ABTest, variants: int) -> int:
    """Per mille of the audience each variant gets."""
    return test.test_percent * 10 // variants


def sample_end(test: ABTest) -> int:
    count = test.variants.count()
    return sample_width(test, count) * count


def ab_rates(test: ABTest) -> list[Rate]:
    """Each variant's messages sent and distinct openers (or clickers)."""
    variants = list(test.variants.select_related("campaign"))
    ids = [v.campaign_id for v in variants if v.campaign_id]
    model = Open if test.metric == ABTest.Metric.OPENS else Click
    hits = dict(
        model.objects.filter(campaign_id__in=ids)
        .values("campaign_id")
        .annotate(n=Count("subscriber_id", distinct=True))
        .values_list("campaign_id", "n")
    )
    return [
        Rate(
            v.label,
            v.campaign_id,
            v.campaign.sent if v.campaign else 0,
            hits.get(v.campaign_id or 0, 0),
        )
        for v in variants
    ]


def ab_choose(*, test: ABTest, label: str) -> ABTest:
    """Send variant `label` to the rest: the campaign takes its content, leaves out whoever
    received a variant, and starts."""
    variant = test.variants.filter(label=label).select_related("campaign").first()
    if variant is None or variant.campaign is None:
        raise CampaignError(
            _("No variant %(label)s has been sent in this test.") % {"label": repr(label)}
        )
    with transaction.atomic():
        locked = ABTest.objects.select_for_update().get(pk=test.pk)
        if locked.status != ABTest.Status.TESTING:
            raise CampaignError(
                _("This test is %(value)s.") % {"value": locked.get_status_display().lower()}
            )
        campaign = locked.campaign
        winner = variant.campaign
        Campaign.objects.filter(pk=campaign.pk).update(
            subject=winner.subject, from_email=winner.from_email, body=winner.body
        )
        campaign.refresh_from_db()
        # Everyone in the test's samples (sent, failed or not) is left out.
        campaign.conditions.create(
            kind=Condition.Kind.SAMPLE, negate=True, value=f"ab{test.pk}:0:{sample_end(locked)}"
        )
        locked.status, locked.winner, locked.decided_at = (
            ABTest.Status.DECIDED,
            winner,
            timezone.now(),
        )
        locked.save(update_fields=["status", "winner", "decided_at"])
        campaign_start(campaign=campaign)  # (refused while the test is undecided)
    log.info("ab test decided", test_id=test.pk, winner=label)
    return locked


def ab_decide_due() -> int:
    """Automatic tests whose time is up send their leader (ties: the first label)."""
    decided = 0
    for test in ABTest.objects.filter(status=ABTest.Status.TESTING, automatic=True):
        if not test.due():
            continue
        best = max(ab_rates(test), key=lambda r: (r.rate, -ord(r.label)))
        try:
            ab_choose(test=test, label=best.label)
            decided += 1
        except CampaignError as error:
            log.warning("ab test not decided", test_id=test.pk, reason=str(error))
    return decided
