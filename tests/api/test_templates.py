"""/api/templates, and templates and bodies written in listmonk's template language."""

from __future__ import annotations

import pytest

from campaigns.listmonk_syntax import translate
from campaigns.models import Campaign, Template
from campaigns.rendering import TemplateError
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory

pytestmark = pytest.mark.django_db

# The shape of listmonk's default campaign template, trimmed.
LISTMONK_LAYOUT = """<!doctype html>
<html><body>
  <div class="wrap">{{ template "content" . }}</div>
  <p>{{ Date "Monday, 2 January 2006" }} ·
     <a href="{{ UnsubscribeURL }}">Unsubscribe</a> ·
     <a href="{{ MessageURL }}">View in browser</a></p>
  {{ TrackView }}{{/* tracking pixel */}}
</body></html>"""


def test_listmonks_actions_become_this_projects():
    assert translate('{{ template "content" . }}') == "{{ content }}"
    assert translate("Hi {{ .Subscriber.Name }} <{{ .Subscriber.Email }}>") == (
        "Hi {{ subscriber.name }} <{{ subscriber.email }}>"
    )
    source = '{{ .Subscriber.Attribs.city }}/{{ index .Subscriber.Attribs "zip" }}'
    assert translate(source) == "{{ subscriber.attributes.city }}/{{ subscriber.attributes.zip }}"
    assert translate('<a href="{{ TrackLink "https://shop.example/x" }}">') == (
        '<a href="https://shop.example/x">'
    )
    assert translate('{{ Date "2006-01-02 15:04" }}') == '{% now "Y-m-d H:i" %}'
    assert translate("{{- .Campaign.Name -}} {{ ManageURL }}") == (
        "{{ campaign.name }} {{ preferences_url }}"
    )
    # This project's own syntax is left as it is.
    assert translate("{{ subscriber.name|default:'friend' }}") == (
        "{{ subscriber.name|default:'friend' }}"
    )


@pytest.mark.parametrize(
    "action", ["{{ .Subscriber.Lists }}", "{{ if .Subscriber.Name }}", '{{ L.T "x" }}']
)
def test_what_cannot_be_translated_is_refused_naming_it(action):
    with pytest.raises(TemplateError, match="is not supported here"):
        translate(action)


def test_a_listmonk_layout_is_saved_translated_and_previews(api_client):
    response = api_client.post(
        "/templates", {"name": "Default", "type": "campaign", "body": LISTMONK_LAYOUT}
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert "{{ content }}" in data["body"] and "{{ unsubscribe_url }}" in data["body"]
    assert "TrackView" not in data["body"] and data["is_default"] is False
    page = api_client.get(f"/templates/{data['id']}/preview")
    assert page.status_code == 200
    assert "This is the campaign's body" in page.content.decode()
    assert "script-src 'none'" in page["Content-Security-Policy"]


def test_an_untranslatable_layout_is_refused(api_client):
    response = api_client.post(
        "/templates", {"name": "X", "body": '{{ template "content" . }}{{ .Subscriber.Lists }}'}
    )
    assert response.status_code == 400
    assert "{{ .Subscriber.Lists }}" in response.json()["message"]
    assert not Template.objects.filter(name="X").exists()


def test_query_get_update_default_and_delete(api_client):
    first, second = TemplateFactory(name="First"), TemplateFactory(name="Second")
    listed = api_client.get("/templates", no_body=True).json()["data"]
    assert [t["name"] for t in listed] == ["First", "Second"] and listed[0]["body"] == ""
    changed = api_client.put(f"/templates/{first.pk}", {"name": "Renamed"}).json()["data"]
    assert changed["name"] == "Renamed"
    assert api_client.put(f"/templates/{second.pk}/default", {}).json()["data"]["is_default"]
    assert api_client.delete(f"/templates/{second.pk}").status_code == 400  # the default
    # A campaign made without a template gets the default one.
    made = api_client.post(
        "/campaigns",
        {"name": "C", "subject": "S", "lists": [MailingListFactory().pk], "body": "Hi"},
    ).json()["data"]
    assert made["template_id"] == second.pk
    assert api_client.delete(f"/templates/{first.pk}").json() == {"data": True}


def test_a_campaign_body_in_listmonks_language_is_translated(api_client):
    made = api_client.post(
        "/campaigns",
        {
            "name": "C",
            "subject": "Hello {{ .Subscriber.Name }}",
            "lists": [MailingListFactory().pk],
            "body": "<p>From {{ .Subscriber.Attribs.city }}</p>",
        },
    ).json()["data"]
    campaign = Campaign.objects.get(pk=made["id"])
    assert campaign.subject == "Hello {{ subscriber.name }}"
    assert campaign.body == "<p>From {{ subscriber.attributes.city }}</p>"


def test_the_layout_of_a_sending_campaign_cannot_change(api_client):
    layout = TemplateFactory()
    CampaignFactory(template=layout, status=Campaign.Status.RUNNING)
    response = api_client.put(f"/templates/{layout.pk}", {"body": "{{ content }}!"})
    assert response.status_code == 400 and "pause it first" in response.json()["message"]
