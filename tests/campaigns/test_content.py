"""Campaign content: formats, CSS inlining, the text alternative, unknown variables, headers,
and header injection."""

from __future__ import annotations

import email
import email.policy
import re
import uuid

import pytest
from django.core.exceptions import ValidationError

from campaigns.content import prepared_content
from campaigns.models import Campaign
from campaigns.rendering import PreparedContent, TemplateError
from campaigns.sanitising import sanitise
from campaigns.services import CampaignError, campaign_start
from mailer import dispatcher
from mailer.batch import run_batch
from mailer.compose import CampaignComposer
from mailer.models import Delivery, PerformanceSettings
from subscribers import links
from tests.factories import (
    CampaignFactory,
    MailingListFactory,
    SubscriberFactory,
    SubscriptionFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db

CONTEXT = {
    "subscriber": {"email": "zoe@example.com", "name": "Zoë", "attributes": {"n": 2}},
    "campaign": {"id": 1, "name": "Spring"},
    "unsubscribe_url": "https://news.example/u/tok/",
    "preferences_url": "https://news.example/p/tok/",
    "view_url": "https://news.example/v/tok/",
}


def test_a_markdown_body_becomes_html_with_a_text_alternative():
    content = PreparedContent(
        subject="News",
        body="# Hello {{ subscriber.name }}\n\n* one\n* [two](https://example.com/2)\n",
        layout=None,
        format="markdown",
    )
    rendered = content.render(CONTEXT)
    assert "<h1>Hello Zoë</h1>" in (rendered.html or "")
    assert '<li><a href="https://example.com/2">two</a></li>' in (rendered.html or "")
    assert "Hello Zoë" in rendered.text and "two" in rendered.text


def test_css_is_inlined_once_and_template_tags_survive_it():
    layout = TemplateFactory(
        html="<html><head><style>p { color: red }</style></head>"
        "<body>{{ content }}<p>Bye</p></body></html>"
    )
    content = PreparedContent(
        subject="s",
        body="<p>{% if subscriber.attributes.n < 3 %}few{% else %}many{% endif %}</p>",
        layout=layout.html,
        format="html",
    )
    html = content.render(CONTEXT).html or ""
    assert '<p style="color: red;">few</p>' in html
    assert "<style>" not in html


def test_the_text_alternative_keeps_links_and_structure():
    content = PreparedContent(
        subject="s",
        body='<h2>Offers</h2><ul><li>Tea</li><li>Cake</li></ul><p><a href="{{ view_url }}">'
        "View online</a></p>",
        layout=None,
        format="html",
    )
    text = content.render(CONTEXT).text
    assert "Offers" in text and "* Tea" in text and "* Cake" in text
    assert "https://news.example/v/tok/" in text


def test_an_unknown_variable_is_refused_with_its_line():
    with pytest.raises(
        TemplateError, match=r"unknown variable \{\{ subscribr.name \}\} \(line 2\)"
    ):
        PreparedContent(
            subject="s", body="Hello\n{{ subscribr.name }}\n", layout=None, format="html"
        )
    with pytest.raises(TemplateError, match="subject uses an unknown variable"):
        PreparedContent(subject="{{ campaign.title }}", body="x", layout=None, format="plain")


def test_attributes_may_have_any_name():
    PreparedContent(
        subject="{{ subscriber.attributes.first_name }}",
        body="{{ subscriber.attributes.plan|default:'free' }}",
        layout=None,
        format="plain",
    )


def test_saving_a_campaign_with_a_broken_body_says_what_is_wrong():
    campaign = CampaignFactory.build(body="Hi {{ subscriber.nmae }}")
    with pytest.raises(ValidationError) as error:
        campaign.full_clean()
    assert "unknown variable {{ subscriber.nmae }} (line 1)" in str(error.value)


def test_a_campaign_with_a_broken_layout_cannot_start():
    layout = TemplateFactory(html="<body>{{ content }}{% if %}</body>")
    campaign = CampaignFactory(template=layout, lists=[MailingListFactory()])
    with pytest.raises(CampaignError, match="cannot start"):
        campaign_start(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def message_for(campaign: Campaign, subscriber, delivery_id: int = 7):
    composer = CampaignComposer(campaign, prepared_content(campaign))
    data = composer.message(
        delivery_id=delivery_id,
        subscriber_id=subscriber.pk,
        email=subscriber.email,
        name=subscriber.name,
        attributes=subscriber.attributes,
    )
    return email.message_from_bytes(data, policy=email.policy.default)


def test_messages_carry_one_click_unsubscribe_list_id_and_a_stable_message_id(settings):
    settings.SITE_URL = "https://news.example"
    mailing_list = MailingListFactory(name="Weekly")
    campaign = CampaignFactory(lists=[mailing_list], body="Bye: {{ unsubscribe_url }}")
    subscriber = SubscriberFactory()

    message = message_for(campaign, subscriber)

    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://news.example/u/") and unsubscribe.endswith("/>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == f"Weekly <list-{mailing_list.pk}.news.example>"
    assert message["X-Campaign-ID"] == str(campaign.pk)
    token = unsubscribe[len("<https://news.example/u/") : -2]
    assert links.read(token, links.Purpose.UNSUBSCRIBE) == links.LinkData(
        subscriber.pk, campaign.pk
    )
    assert token in message.get_body(("plain",)).get_content()
    assert message_for(campaign, subscriber)["Message-ID"] == message["Message-ID"]
    assert message_for(campaign, subscriber, delivery_id=8)["Message-ID"] != message["Message-ID"]


def test_a_name_with_a_line_break_is_refused_for_that_recipient_only(sink_server, smtp_sink):
    mailing_list = MailingListFactory()
    SubscriptionFactory(mailing_list=mailing_list, subscriber=SubscriberFactory(name="Eve"))
    evil = SubscriberFactory(name="Mallory\r\nBcc: victim@example.com")
    SubscriptionFactory(mailing_list=mailing_list, subscriber=evil)
    campaign = CampaignFactory(
        status=Campaign.Status.SCHEDULED,
        lists=[mailing_list],
        subject="Hi {{ subscriber.attributes.x }}",
    )
    dispatcher.campaign_begin(campaign.pk)
    dispatcher.share_limits(PerformanceSettings.load())

    run_batch(batch_id=str(uuid.uuid4()))

    refused = Delivery.objects.get(campaign=campaign, subscriber=evil)
    assert refused.status == "failed"
    assert refused.reply.startswith("not sent: The recipient name contains a line break")
    assert [m.rcpt_to for m in smtp_sink.messages()] == [
        d.email for d in Delivery.objects.filter(campaign=campaign, status="sent")
    ]
    assert all(b"victim" not in m.data for m in smtp_sink.messages())


def test_an_attribute_with_a_line_break_cannot_add_a_header(sink_server, smtp_sink):
    mailing_list = MailingListFactory()
    SubscriptionFactory(
        mailing_list=mailing_list,
        subscriber=SubscriberFactory(attributes={"x": "a\r\nBcc: victim@example.com"}),
    )
    campaign = CampaignFactory(
        status=Campaign.Status.SCHEDULED,
        lists=[mailing_list],
        subject="Hi {{ subscriber.attributes.x }}",
    )
    dispatcher.campaign_begin(campaign.pk)
    dispatcher.share_limits(PerformanceSettings.load())

    run_batch(batch_id=str(uuid.uuid4()))

    (received,) = smtp_sink.messages()
    message = received.message()
    assert message["Subject"] == "Hi a Bcc: victim@example.com"
    assert message["Bcc"] is None


def test_pasted_html_shown_in_the_admin_loses_scripts_and_handlers():
    shown = sanitise(
        '<p style="color:red" onclick="steal()">Hi<script>alert(1)</script></p>'
        '<img src="x.png" onerror="steal()"><a href="javascript:steal()">x</a>'
    )
    assert "script" not in shown and "onclick" not in shown and "onerror" not in shown
    assert "javascript:" not in shown
    assert 'style="color:red"' in shown


def test_the_preview_shows_the_message_as_a_chosen_subscriber_gets_it(admin_client):
    subscriber = SubscriberFactory(name="Ada", attributes={"city": "Turin"})
    campaign = CampaignFactory(
        subject="For {{ subscriber.name }}",
        body="<p>Hello from {{ subscriber.attributes.city }}</p><script>x()</script>",
    )
    url = f"/admin/campaigns/campaign/{campaign.pk}/preview/?subscriber={subscriber.email}"

    text = admin_client.get(url).content.decode()

    assert '<span id="subject">For Ada</span>' in text
    assert "Hello from Turin" in text
    assert "x()" not in text.split('id="text"')[0].split("srcdoc=")[1]


def test_a_layout_without_its_placeholder_or_with_a_typo_is_refused_on_save():
    for html, message in [
        ("<body>no place for the body</body>", "no {{ content }} placeholder"),
        ("<body>{{ content }}{{ subscriber.emial }}</body>", "unknown variable"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(message)):
            TemplateFactory.build(html=html).full_clean()
