"""The bad-input catalogue: malformed and hostile files, templates, headers, settings, links and
command arguments. Each gives an error that says what is wrong and what to do, and changes
nothing it should not."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from campaigns.models import Campaign, Click, Open
from campaigns.services import CampaignError, campaign_start
from mailer.models import Delivery, DomainThrottle, SmtpServer
from subscribers import links
from subscribers.exports import subscribers_export_csv
from subscribers.imports import ImportFileError, subscribers_import_csv
from subscribers.models import Subscriber, Subscription
from tests.factories import CampaignFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def run_import(data: bytes, **kwargs):
    return subscribers_import_csv(
        stream=io.BytesIO(data), mailing_list=MailingListFactory(), **kwargs
    )


# --- Files ------------------------------------------------------------------------------------


def test_a_utf16_file_is_refused_whole_saying_how_to_save_it():
    data = "email,name\nada@example.com,Ada\n".encode("utf-16")
    with pytest.raises(ImportFileError, match=r"UTF-16.*save it as 'CSV UTF-8'"):
        run_import(data)
    assert not Subscriber.objects.exists()


def test_a_latin1_line_is_reported_and_the_rest_imported():
    report = run_import(b"email,name\nada@example.com,Ada\nben@example.com,Beno\xeet\n")
    assert report.imported == 1
    assert report.skipped == [(3, "the line is not valid UTF-8; save the file as UTF-8")]


def test_missing_columns_are_reported_per_row_or_for_the_file():
    with pytest.raises(ImportFileError, match="no 'email' column"):
        run_import(b"name,city\nAda,Lyon\n")
    report = run_import(b"email,name,city\nada@example.com,Ada\nben@example.com,Ben,Oslo\n")
    assert report.imported == 1
    assert report.skipped == [(2, "2 columns where the header has 3")]


def test_a_ten_megabyte_line_is_reported_and_the_lines_around_it_imported():
    data = (
        b"email,name\nada@example.com,Ada\n"
        + b"ben@example.com,"
        + b"x" * 10_000_000
        + b"\nchloe@example.com,Chloe\n"
    )
    report = run_import(data)
    assert report.imported == 2
    [(line, reason)] = report.skipped
    assert line == 3 and "a value is longer than" in reason
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "ada@example.com",
        "chloe@example.com",
    }


def test_an_unclosed_quote_names_the_lines_it_swallowed():
    report = run_import(b'email,name\nada@example.com,"Ada\nben@example.com,Ben\n')
    [(line, reason)] = report.skipped
    assert line == 2 and "runs from line 2 to 3: is a quote left open?" in reason
    assert not Subscriber.objects.exists()


def test_formulas_in_names_are_defused_in_exports_and_import_back_unchanged():
    hostile = "=cmd|' /C calc'!A0"
    subscriber = SubscriberFactory(name=hostile, attributes={"city": "@SUM(1+1)"})
    exported = b"".join(
        chunk.encode() for chunk in subscribers_export_csv(subscribers=Subscriber.objects.all())
    )
    assert b"=cmd" not in exported.replace(b"'=cmd", b"")
    assert b"'=cmd|' /C calc'!A0" in exported and b"'@SUM(1+1)" in exported
    subscriber.delete()
    report = run_import(exported)
    assert report.imported == 1
    back = Subscriber.objects.get()
    assert (back.name, back.attributes["city"]) == (hostile, "@SUM(1+1)")


def test_a_name_with_a_line_break_is_reported():
    report = run_import(b'email,name\nada@example.com,"Ada\r\nBcc: x@evil.example"\n')
    assert "the name contains a line break" in report.skipped[0][1]
    assert not Subscriber.objects.exists()


# --- Campaign content and headers -------------------------------------------------------------


def startable(**fields) -> Campaign:
    campaign = CampaignFactory(**fields)
    campaign.lists.add(MailingListFactory())
    return campaign


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"body": "{% if %}"}, "body", "The body cannot be used"),
        ({"body": "Hi {{ subscriber.nmae }}"}, "body", "subscriber.nmae"),
        ({"subject": "Hi\r\nBcc: x@evil.example"}, "subject", "a subject is one line"),
        ({"from_email": "A <a@shop.example>\r\nBcc: x@evil.example"}, "from_email", "line break"),
        ({"from_email": "Shop news"}, "from_email", "is not an address"),
        ({"body": "x" * 1_000_001}, "body", "at most 1,000 KB"),
    ],
)
def test_broken_content_is_refused_on_save_and_at_start(fields, field, message):
    campaign = startable(**fields)
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert message in " ".join(refused.value.message_dict[field])
    with pytest.raises(CampaignError, match="cannot start"):
        campaign_start(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not Delivery.objects.exists()


def test_an_invalid_send_at_is_refused_by_the_admin_form(admin_user):
    campaign = startable()
    request = RequestFactory().get("/")
    request.user = admin_user
    form_class = site._registry[Campaign].get_form(request, campaign)
    data = {
        "name": campaign.name,
        "subject": campaign.subject,
        "body": campaign.body,
        "format": campaign.format,
        "lists": [campaign.lists.get().pk],
        "weight": 1,
        "send_at_0": "2026-13-45",
        "send_at_1": "25:61",
    }
    form = form_class(data, instance=campaign)
    assert not form.is_valid()
    assert "send_at" in form.errors
    campaign.refresh_from_db()
    assert campaign.send_at is None


# --- Rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -5])
def test_rates_of_zero_or_less_are_refused_saying_how_to_remove_a_limit(rate):
    with pytest.raises(ValidationError) as refused:
        CampaignFactory.build(rate_limit=rate).full_clean()
    assert "leave the field empty" in refused.value.message_dict["rate_limit"][0]
    with pytest.raises(ValidationError) as refused:
        SmtpServer(name="s", host="smtp.example", rate_limit=rate).full_clean()
    assert "leave the field empty" in refused.value.message_dict["rate_limit"][0]
    with pytest.raises(ValidationError) as refused:
        DomainThrottle(domain="gmail.com", rate_limit=rate).full_clean()
    assert "delete the throttle" in refused.value.message_dict["rate_limit"][0]


# --- Signed links -----------------------------------------------------------------------------


def tampered(token: str) -> list[str]:
    value, _, signature = token.rpartition(":")
    subscriber, _, campaign = value.partition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [
        f"{value}:{flipped}",  # the signature changed
        f"{int(subscriber) + 1}.{campaign}:{signature}",  # another subscriber, same signature
        value,  # no signature
        "",
    ]


def test_tampered_links_are_refused_and_count_nothing(client):
    subscription = Subscription.objects.create(
        subscriber=SubscriberFactory(), mailing_list=MailingListFactory(), status="confirmed"
    )
    campaign = CampaignFactory()
    good = links.token(links.Purpose.UNSUBSCRIBE, subscription.subscriber_id, campaign.pk)
    for token in tampered(good):
        for path in (f"/u/{token}/", f"/p/{token}/", f"/v/{token}/", f"/c/{token}/1/"):
            if token:
                assert client.get(path).status_code == 404, path
        assert client.post(f"/u/{token}/").status_code in (404, 405) if token else True
        response = client.get(f"/o/{token}/") if token else None
        assert response is None or response["Content-Type"] == "image/gif"
    subscription.refresh_from_db()
    assert subscription.status == "confirmed"
    assert not Open.objects.exists() and not Click.objects.exists()


# --- Commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel", "status", "test"])
def test_every_campaign_command_names_an_unknown_id(action):
    campaign = CampaignFactory()
    args = ["campaign", action, "999999"] + (["--to", "me@example.com"] if action == "test" else [])
    with pytest.raises(CommandError, match="no campaign with id 999999"):
        call_command(*args)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_the_subscriber_and_server_commands_name_what_they_cannot_find(tmp_path: Path):
    csv = tmp_path / "people.csv"
    csv.write_text("email\nada@example.com\n")
    with pytest.raises(CommandError, match="no mailing list named 'Nope'"):
        call_command("import_subscribers", str(csv), "--list", "Nope")
    with pytest.raises(CommandError, match="no mailing list named 'Nope'"):
        call_command("export_subscribers", "--list", "Nope")
    with pytest.raises(CommandError, match="no SMTP server named 'nope'"):
        call_command("check_smtp", "nope")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_subscribers", str(tmp_path / "missing.csv"), "--list", "Nope")
    assert not Subscriber.objects.exists()
