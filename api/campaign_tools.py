"""Beyond listmonk's campaign endpoints, in the same envelope: a campaign's conditions
(attributes and behaviour), clone, resend to non-openers, and A/B tests (create, start, the
figures, send the winner)."""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from api.campaigns import as_json, get_visible
from api.envelope import ApiRequest, invalid, require, rfc3339
from campaigns import services
from campaigns.ab import ABTest, Variant, verdict
from campaigns.ab_services import ab_choose, ab_rates, ab_start
from campaigns.audience import audience_count
from campaigns.models import Campaign, Condition
from subscribers import access

router = Router(tags=["Campaigns"])


class ConditionIn(Schema):
    kind: str = "attribute"
    negate: bool = False
    attribute: str = ""
    operator: str = "equals"
    value: str = ""
    campaign_id: int | None = None
    link: str = ""
    days: int | None = Field(None, ge=1)


def condition_json(c: Condition) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "negate": c.negate,
        "attribute": c.attribute,
        "operator": c.operator,
        "value": c.value,
        "campaign_id": c.other_id,
        "link": c.link,
        "days": c.days,
        "description": str(c),
    }


def conditions_json(campaign: Campaign) -> dict[str, Any]:
    count = audience_count(campaign.pk, campaign.condition_triples(), campaign.behaviours())
    return {
        "conditions": [condition_json(c) for c in campaign.conditions.order_by("pk")],
        "audience": count,
    }


@router.get("/campaigns/{int:campaign_id}/conditions")
def get_conditions(request: ApiRequest, campaign_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.view_campaign", "read campaigns")
    return {"data": conditions_json(get_visible(request.auth, campaign_id))}


@router.put("/campaigns/{int:campaign_id}/conditions")
def set_conditions(request: ApiRequest, campaign_id: int, body: list[ConditionIn]) -> dict:
    """Replace the campaign's conditions (a draft's: the audience is fixed at the start)."""
    require(request.auth, "campaigns.change_campaign", "change campaigns")
    campaign = get_visible(request.auth, campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        raise HttpError(409, f"Campaign {campaign_id} is {campaign.status}; only a draft's "
                        "conditions change.")  # fmt: skip
    with transaction.atomic():
        campaign.conditions.all().delete()
        for n, spec in enumerate(body, start=1):
            other = None
            if spec.campaign_id is not None:
                other = get_visible(request.auth, spec.campaign_id)
            fields = spec.dict(exclude={"campaign_id"})
            if fields["kind"] not in Condition.Kind.values:
                raise HttpError(400, f"Condition {n}: kind must be one of {Condition.Kind.values}.")
            condition = Condition(campaign=campaign, other=other, **fields)
            try:
                condition.full_clean()
            except ValidationError as error:
                raise HttpError(400, f"Condition {n}: {invalid(error)}") from error
            condition.save()
    return {"data": conditions_json(campaign)}


class Clone(Schema):
    name: str = Field("", max_length=200)


@router.post("/campaigns/{int:campaign_id}/clone")
def clone(request: ApiRequest, campaign_id: int, body: Clone) -> dict[str, Any]:
    require(request.auth, "campaigns.add_campaign", "create campaigns")
    copy = services.campaign_clone(campaign=get_visible(request.auth, campaign_id), name=body.name)
    return {"data": as_json(copy)}


class Resend(Schema):
    subject: str = Field(min_length=1, max_length=998)


@router.post("/campaigns/{int:campaign_id}/resend")
def resend(request: ApiRequest, campaign_id: int, body: Resend) -> dict[str, Any]:
    """A draft to those who got the campaign and did not open it (nor left or bounced)."""
    require(request.auth, "campaigns.add_campaign", "create campaigns")
    campaign = get_visible(request.auth, campaign_id)
    try:
        copy = services.campaign_resend_to_non_openers(campaign=campaign, subject=body.subject)
    except services.CampaignError as error:
        raise HttpError(400, str(error)) from error
    return {"data": {**as_json(copy), **conditions_json(copy)}}


class VariantIn(Schema):
    subject: str = ""
    from_email: str = ""
    body: str = ""


class NewTest(Schema):
    metric: Literal["opens", "clicks"] = "opens"
    test_percent: int = Field(20, ge=2, le=90)
    decide_after: int = Field(14400, ge=1)
    automatic: bool = True
    variants: list[VariantIn] = Field(min_length=2, max_length=5)


def test_json(test: ABTest) -> dict[str, Any]:
    rates = ab_rates(test)
    return {
        "id": test.pk,
        "campaign_id": test.campaign_id,
        "status": test.status,
        "metric": test.metric,
        "test_percent": test.test_percent,
        "decide_after": test.decide_after,
        "automatic": test.automatic,
        "started_at": rfc3339(test.started_at),
        "decided_at": rfc3339(test.decided_at),
        "winner_campaign_id": test.winner_id,
        "variants": [
            {
                "label": r.label,
                "campaign_id": r.campaign_id,
                "sent": r.sent,
                test.metric: r.hits,
                "rate": round(r.rate, 4),
                "interval_95": [round(x, 4) for x in r.interval()],
            }
            for r in rates
        ],
        "verdict": verdict(rates),
    }


def the_test(user: Any, campaign_id: int) -> ABTest:
    test = ABTest.objects.filter(campaign=get_visible(user, campaign_id)).first()
    if test is None:
        raise HttpError(404, f"Campaign {campaign_id} has no A/B test.")
    return test


@router.post("/campaigns/{int:campaign_id}/ab")
def create_test(request: ApiRequest, campaign_id: int, body: NewTest) -> dict[str, Any]:
    require(request.auth, "campaigns.add_abtest", "create A/B tests")
    campaign = get_visible(request.auth, campaign_id)
    if campaign.status != Campaign.Status.DRAFT or campaign.kind != Campaign.Kind.CAMPAIGN:
        raise HttpError(409, f"Campaign {campaign_id} is not a draft campaign; test a draft.")
    if ABTest.objects.filter(campaign=campaign).exists():
        raise HttpError(409, f"Campaign {campaign_id} has an A/B test already.")
    with transaction.atomic():
        test = ABTest.objects.create(campaign=campaign, **body.dict(exclude={"variants"}))
        for label, variant in zip("ABCDE", body.variants, strict=False):
            Variant.objects.create(test=test, label=label, **variant.dict())
    return {"data": test_json(test)}


@router.get("/campaigns/{int:campaign_id}/ab")
def get_test(request: ApiRequest, campaign_id: int) -> dict[str, Any]:
    require(request.auth, "campaigns.view_abtest", "read A/B tests")
    return {"data": test_json(the_test(request.auth, campaign_id))}


class TestStatus(Schema):
    status: Literal["testing"]


def _may_send(user: Any, test: ABTest) -> None:
    require(user, "campaigns.send_campaign", "start A/B tests or send their winner")
    if refused := access.refused_lists(user, test.campaign.lists.all()):
        names = ", ".join(m.name for m in refused)
        raise HttpError(403, f"This API user may not send to the list(s) {names}.")


@router.put("/campaigns/{int:campaign_id}/ab/status")
def start_test(request: ApiRequest, campaign_id: int, body: TestStatus) -> dict[str, Any]:
    test = the_test(request.auth, campaign_id)
    _may_send(request.auth, test)
    try:
        test = ab_start(test=test)
    except services.CampaignError as error:
        raise HttpError(409, str(error)) from error
    return {"data": test_json(test)}


class Winner(Schema):
    label: str = Field(pattern=r"^[A-E]$")


@router.post("/campaigns/{int:campaign_id}/ab/winner")
def choose_winner(request: ApiRequest, campaign_id: int, body: Winner) -> dict[str, Any]:
    test = the_test(request.auth, campaign_id)
    _may_send(request.auth, test)
    try:
        test = ab_choose(test=test, label=body.label)
    except services.CampaignError as error:
        raise HttpError(409, str(error)) from error
    return {"data": test_json(test)}
