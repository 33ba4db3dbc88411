"""The editor's server side: conversions between formats that keep template tags and say what
they lose, the draft preview (sanitised, for a sample subscriber), and who may use them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from campaigns.convert import convert, losses
from tests.factories import SubscriberFactory, TemplateFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

HTML = (
    "<h2>Hello {{ subscriber.attributes.first_name }}</h2>"
    '<p>Our <strong>spring</strong> range: <a href="{{ view_url }}">see it</a></p>'
    "{% if subscriber.attributes.vip %}<p>VIP &amp; friends</p>{% endif %}"
)


def test_html_to_markdown_and_back_keeps_the_text_the_links_and_the_template_tags():
    markdown = convert(HTML, "html", "markdown")
    assert markdown.startswith("## Hello {{ subscriber.attributes.first_name }}")
    assert "**spring**" in markdown and "[see it]({{ view_url }})" in markdown
    assert "{% if subscriber.attributes.vip %}" in markdown
    back = convert(markdown, "markdown", "html")
    assert "<h2>Hello {{ subscriber.attributes.first_name }}</h2>" in back
    assert '<a href="{{ view_url }}">see it</a>' in back
    assert losses(HTML, "html", "markdown") == []


def test_what_markdown_cannot_hold_is_named_before_converting():
    styled = (
        '<table><tr><td style="color:red" class="x">A</td></tr></table><div align="center">B</div>'
    )
    assert losses(styled, "html", "markdown") == [
        "tables",
        "colours, fonts and other inline styles",
        "CSS classes",
        "layout blocks and alignment",
    ]
    assert losses(styled, "html", "plain")[0].startswith("all formatting")
    assert losses("", "html", "plain") == []


def test_plain_text_becomes_paragraphs_with_its_characters_escaped():
    assert convert("Hi {{ subscriber.name }},\n\nA & B <b>\nnext", "plain", "html") == (
        "<p>Hi {{ subscriber.name }},</p>\n<p>A &amp; B &lt;b&gt;<br>next</p>"
    )
    with pytest.raises(ValueError, match="Unknown format"):
        convert("x", "html", "pdf")


def test_the_preview_renders_the_draft_for_a_sample_subscriber_and_sanitises_it(admin_client):
    layout = TemplateFactory(html="<html><body><header>Shop</header>{{ content }}</body></html>")
    response = admin_client.post(
        "/admin/campaigns/campaign/editor/preview/",
        {
            "subject": "{{ subscriber.name }}, news",
            "body": "<p>Hi {{ subscriber.name }}</p><script>alert(1)</script>"
            "<img src=x onerror=alert(2)>",
            "format": "html",
            "template": layout.pk,
        },
    ).json()
    assert response["subject"] == "Sample, news" and response["error"] == ""
    assert "<p>Hi Sample</p>" in response["html"] and "Shop" in response["html"]
    assert "<script" not in response["html"] and "onerror" not in response["html"]
    broken = admin_client.post(
        "/admin/campaigns/campaign/editor/preview/",
        {"subject": "S", "body": "{{ subscribr.name }}", "format": "html"},
    ).json()
    assert "unknown variable" in broken["error"] and "subscribr" in broken["error"]


def test_the_layout_preview_puts_a_sample_body_in_it(admin_client):
    response = admin_client.post(
        "/admin/campaigns/template/editor/preview/",
        {"body": "<html><body><h1>Shop</h1>{{ content }}</body></html>", "kind": "campaign"},
    ).json()
    assert "<h1>Shop</h1>" in response["html"] and "Each campaign's own text" in response["html"]


def test_only_those_who_may_write_content_use_the_editor_endpoints(client):
    analyst = User.objects.create_user("analyst", is_staff=True)
    analyst.groups.add(Group.objects.get(name="Analyst"))
    client.force_login(analyst)
    for url in (
        "/admin/campaigns/campaign/editor/preview/",
        "/admin/campaigns/campaign/editor/convert/",
    ):
        assert client.post(url, {"body": "x", "from": "html", "to": "plain"}).status_code == 403
    client.force_login(User.objects.create_user("editor", is_staff=True))
    User.objects.get(username="editor").groups.add(Group.objects.get(name="Editor"))
    converted = client.post(
        "/admin/campaigns/campaign/editor/convert/",
        {"body": "<p>x</p>", "from": "html", "to": "markdown"},
    )
    assert converted.json() == {"body": "x\n", "lost": []}
    assert client.get("/admin/campaigns/campaign/editor/preview/").status_code == 403


def test_the_editor_offers_the_attributes_of_the_users_subscribers(admin_client):
    SubscriberFactory(attributes={"city": "Lyon", "first_name": "Ada", "bad key": 1})
    page = admin_client.get("/admin/campaigns/campaign/add/").content.decode()
    assert 'data-editor="body"' in page and 'id="editor-variables"' in page
    assert "{{ subscriber.attributes.first_name }}" in page and "bad key" not in page
