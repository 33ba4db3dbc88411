"""Public pages speak their list's language; the admin speaks its user's."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from subscribers import links
from subscribers.models import Subscription
from tests.factories import CampaignFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_the_subscribe_form_is_in_the_lists_language(client):
    german = MailingListFactory(name="Neuigkeiten", is_public=True, language="de")
    page = client.get(f"/subscribe/{german.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert '<html lang="de">' in text and page["Content-Language"] == "de"
    assert "Neuigkeiten abonnieren" in text and "E-Mail-Adresse" in text
    assert ">Abonnieren</button>" in text


def test_the_opt_in_message_is_in_the_lists_language(client, queued, sink_server, smtp_sink):
    french = MailingListFactory(name="Nouvelles", is_public=True, language="fr", opt_in="double")
    answer = client.post(
        f"/subscribe/{french.pk}/",
        {"email": "lea@example.com", "altcha": "x"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 400  # no proof of work: the form says why, in French
    assert "Le formulaire n&#x27;a pas été envoyé" in answer.content.decode()

    from mailer import transactional
    from subscribers.services import subscriber_subscribe

    subscriber, _ = subscriber_subscribe(email="lea@example.com", lists=[french])
    transactional.send_optin_confirmation(subscriber_id=subscriber.pk, list_ids=[french.pk])
    (message,) = smtp_sink.messages()
    mail = message.message()
    assert mail["Subject"] == "Veuillez confirmer votre abonnement à Nouvelles"
    assert (
        "veuillez confirmer que vous souhaitez recevoir Nouvelles"
        in mail.get_body(("plain",)).get_content()
    )


def test_unsubscribe_and_preferences_speak_the_subscribers_list_language(client):
    german = MailingListFactory(name="Neuigkeiten", language="de")
    person = SubscriberFactory()
    Subscription.objects.create(subscriber=person, mailing_list=german, status="confirmed")
    campaign = CampaignFactory(lists=[german])
    token = links.token(links.Purpose.UNSUBSCRIBE, person.pk, campaign.pk)
    page = client.get(f"/u/{token}/").content.decode()
    assert f"{person.email} abmelden?" in page
    done = client.post(f"/u/{token}/").content.decode()
    assert "Sie sind abgemeldet" in done
    preferences = links.token(links.Purpose.PREFERENCES, person.pk, None)
    assert "Meine Daten löschen" in client.get(f"/p/{preferences}/").content.decode()


def test_the_archive_of_a_list_is_in_its_language(client):
    french = MailingListFactory(name="Nouvelles", language="fr")
    campaign = CampaignFactory(lists=[french], archive=True, archive_slug="printemps")
    Campaign.objects.filter(pk=campaign.pk).update(status="finished", started_at=timezone.now())
    page = client.get(f"/archive/list/{french.uuid}/").content.decode()
    assert "S'abonner au flux" in page


def test_the_admin_speaks_its_users_language(admin_client):
    french = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Tableau de bord" in french and "Audience" in french
    admin_client.post("/i18n/setlang/", {"language": "de", "next": "/admin/"})
    german = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Übersicht" in german and "Jetzt im Versand" in german


def test_the_admins_forms_actions_and_messages_are_in_its_users_language(admin_client):
    """Field labels, help texts, choices, fieldsets, actions and the messages after an action."""
    campaign = CampaignFactory()
    admin_client.post("/i18n/setlang/", {"language": "de", "next": "/admin/"})
    form = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Betreff" in form and "Öffnungen verfolgen" in form and "Öffentliches Archiv" in form
    assert "Wann der Versand beginnt." in form and "Nur Text" in form
    changelist = admin_client.get("/admin/campaigns/campaign/").content.decode()
    assert "Ausgewählte Kampagnen pausieren" in changelist
    answer = admin_client.post(
        "/admin/campaigns/campaign/",
        {"action": "clone", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "1 Entwurf/Entwürfe angelegt" in answer.content.decode()
    admin_client.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    sequences = admin_client.get("/admin/automations/sequence/add/").content.decode()
    assert "Déclencheur" in sequences and "chaque année" in sequences
