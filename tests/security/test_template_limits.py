"""The campaign template language reaches nothing outside the message and cannot be made to
take a worker's memory or time: a fixed set of tags and filters, loops charged for what they
write, rendered parts capped."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError

from campaigns.rendering import PreparedContent, TemplateError
from campaigns.template_language import MAX_LOOP_OUTPUT
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

LOOP = '{% for a in "xxxxxxxxxx" %}'
# 246 bytes of body that used to render ten times more per level (0.3 s and 100 KB at five levels).
BOMB = LOOP * 7 + "Hello {{ subscriber.name }}, our offer! " + "{% endfor %}" * 7


@pytest.mark.parametrize(
    "body",
    [
        '{% include "/etc/passwd" %}',
        '{% extends "admin/base.html" %}',
        "{% load static %}{% static 'x' %}",
        "{% debug %}",
        "{% url 'admin:index' %}",
        "{% autoescape off %}{{ subscriber.name }}{% endautoescape %}",
        "{{ subscriber.name|safe }}",
        '{{ subscriber.name|ljust:"100000000" }}',
        '{{ subscriber.name|stringformat:"0100000000d" }}',
        "{% lorem 100000 p %}",
    ],
)
def test_tags_and_filters_that_reach_outside_or_blow_up_are_refused_on_save(body):
    campaign = CampaignFactory.build(body=body)
    with pytest.raises(ValidationError) as refused:
        campaign.clean()
    assert "Campaigns may use these" in str(refused.value)


def test_the_admin_refuses_an_include_with_a_reason_instead_of_a_500(admin_client):
    campaign = CampaignFactory()
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    campaign.body = '{% include "/etc/passwd" %}'
    campaign.save()  # written around the form: the preview must still answer
    preview = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/preview/")
    assert preview.status_code in (200, 400)
    assert b"root:" not in preview.content


def test_nested_loops_stop_at_the_budget_quickly():
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="loops of this message"):
        PreparedContent(subject="s", body=BOMB, layout=None, format="html")
    assert time.perf_counter() - started < 2  # bounded work, not a timed benchmark


def test_a_recipient_whose_values_make_too_long_a_message_fails_alone():
    content = PreparedContent(
        subject="s",
        body="{% for c in subscriber.attributes.items %}{{ c }}, and more text{% endfor %}",
        layout=None,
        format="html",
    )
    small = {"subscriber": {"name": "A", "attributes": {"items": ["a", "b"]}}}
    assert "a, and more text" in content.render(small).html
    huge = {"subscriber": {"name": "A", "attributes": {"items": ["x"] * MAX_LOOP_OUTPUT}}}
    with pytest.raises(TemplateError, match="loops of this message"):
        content.render(huge)


def test_the_usual_tags_and_filters_still_work():
    content = PreparedContent(
        subject="{{ subscriber.name|upper }}",
        body=(
            "{% if subscriber.attributes.vip %}VIP{% else %}Hi{% endif %} "
            "{% for x in subscriber.attributes.list %}{{ x|title }}{% if not forloop.last %}, "
            "{% endif %}{% endfor %} {{ subscriber.attributes.n|add:2 }} "
            "{{ subscriber.attributes.price|floatformat:2 }} {{ subscriber.name|default:'you' }}"
        ),
        layout=None,
        format="html",
    )
    rendered = content.render(
        {
            "subscriber": {
                "name": "",
                "attributes": {"vip": False, "list": ["a", "b"], "n": "3", "price": "9.5"},
            }
        }
    )
    assert rendered.html == "Hi A, B 5 9.50 you"
