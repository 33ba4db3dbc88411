from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.rendering import PreparedContent, TemplateError
from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_start,
)
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_start_schedules_a_draft():
    campaign = CampaignFactory(lists=[MailingListFactory()])

    campaign = campaign_start(campaign=campaign)

    assert campaign.status == Campaign.Status.SCHEDULED


def test_start_refuses_a_campaign_without_lists():
    with pytest.raises(CampaignError, match="no mailing lists"):
        campaign_start(campaign=CampaignFactory())


def test_start_refuses_a_broken_template_before_anything_is_sent():
    campaign = CampaignFactory(lists=[MailingListFactory()], body="Hi {% if subscriber.name %}")

    with pytest.raises(
        CampaignError,
        match=r"cannot start: The body cannot be used \(line 1: '\{% if subscriber.name %\}'\)",
    ):
        campaign_start(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_layout_without_content_placeholder_is_refused():
    campaign = CampaignFactory(
        lists=[MailingListFactory()], template=TemplateFactory(html="<html>no body</html>")
    )
    with pytest.raises(CampaignError, match=r"no \{\{ content \}\} placeholder"):
        campaign_start(campaign=campaign)


def test_pause_resume_and_cancel_follow_the_allowed_transitions():
    campaign = CampaignFactory(lists=[MailingListFactory()], status=Campaign.Status.RUNNING)

    campaign = campaign_pause(campaign=campaign)
    assert campaign.status == Campaign.Status.PAUSED
    campaign = campaign_resume(campaign=campaign)
    assert campaign.status == Campaign.Status.SCHEDULED
    campaign = campaign_cancel(campaign=campaign)
    assert campaign.status == Campaign.Status.CANCELLED

    with pytest.raises(CampaignError, match="A cancelled campaign cannot become scheduled"):
        campaign_resume(campaign=campaign)


def test_an_action_on_a_stale_copy_is_refused():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    stale = Campaign.objects.get(pk=campaign.pk)
    campaign_pause(campaign=campaign)

    with pytest.raises(CampaignError, match="changed to paused while this action ran"):
        campaign_pause(campaign=stale)


def test_plain_text_alternative_keeps_personalisation():
    content = PreparedContent(
        subject="Hi {{ subscriber.name }}",
        body="<h1>Hello {{ subscriber.name }}</h1><p>See <b>you</b></p>",
        layout=None,
        format="html",
    )
    rendered = content.render({"subscriber": {"name": "Zoë <3"}})

    assert rendered.subject == "Hi Zoë <3"
    assert "<h1>Hello Zoë &lt;3</h1>" in (rendered.html or "")
    assert rendered.text == "Hello Zoë <3\n\nSee you\n"


def test_template_syntax_errors_name_the_line():
    with pytest.raises(TemplateError, match=r"\(line 2: '\{% endfor %\}'\)"):
        PreparedContent(subject="s", body="ok\n{% endfor %}", layout=None, format="html")


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ subscriber.name }} from {{ subscriber.attributes.city }}!",
        "Hi {{ subscriber.name|default:'friend' }} {{ subscriber.attributes.missing }}.",
        "{{ subscriber.attributes.visits }} visits, {{ subscriber.attributes.score }} points",
        "{{ subscriber.attributes.none }} and {{ subscriber.attributes.nested.deeper.x }}",
        "<b>{{ subscriber.name }}</b> {% if subscriber.name %}yes{% endif %}",
        "{{ subscriber.name|upper }} {{ campaign.name }}",
    ],
)
def test_the_fast_path_renders_exactly_what_django_renders(source):
    from django.template import Context
    from django.template import Template as DjangoTemplate

    from campaigns.rendering import _html_engine, _text_engine

    context = {
        "subscriber": {
            "name": "Zoë & <Co>",
            "attributes": {"city": "Kraków", "visits": 12, "score": 2.5, "none": None},
        },
        "campaign": {"name": "Spring"},
    }
    for engine, autoescape in ((_html_engine, True), (_text_engine, False)):
        content = PreparedContent(
            subject="s", body=source, layout=None, format="html" if autoescape else "plain"
        )
        expected = DjangoTemplate(source, engine=engine).render(
            Context(context, autoescape=autoescape)
        )
        rendered = content.render(context)
        assert (rendered.html if autoescape else rendered.text) == expected
