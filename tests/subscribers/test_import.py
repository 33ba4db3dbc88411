from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from subscribers.imports import ImportFileError, subscribers_import_csv
from subscribers.models import MailingList, Subscriber, Subscription
from tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def run_import(text: bytes, mailing_list: MailingList, **kwargs):
    return subscribers_import_csv(stream=io.BytesIO(text), mailing_list=mailing_list, **kwargs)


def test_good_rows_are_imported_and_bad_rows_reported_with_their_line():
    csv = (
        b"email,name,city,plan\n"
        b"Ada@Example.com,Ada,Lyon,pro\n"  # line 2: stored lower-cased
        b"not-an-email,Bad,Oslo,free\n"  # line 3: invalid
        b"ben@example.com,Ben,,free\n"  # line 4: empty attribute dropped
        b"ada@example.com,Ada again,Paris,pro\n"  # line 5: duplicate of line 2
        b"chloe@example.com,Chlo\xe9,Porto\n"  # line 6: not UTF-8 and a column short
        b"dmitri@example.com,Dmitri,Turin,free,extra\n"  # line 7: too many columns
        b"\n"
        b'emma@example.com,"Emma, Jr.",Kyiv,pro\n'  # line 9: quoted comma
    )
    mailing_list = MailingListFactory()

    report = run_import(csv, mailing_list)

    assert report.imported == 3
    assert [line for line, _ in report.skipped] == [3, 5, 6, 7]
    reasons = dict(report.skipped)
    assert "'not-an-email' is not a valid email address" in reasons[3]
    assert "already appears on line 2" in reasons[5]
    assert "not valid UTF-8" in reasons[6]
    assert "5 columns where the header has 4" in reasons[7]
    ada = Subscriber.objects.get(email="ada@example.com")
    assert ada.attributes == {"city": "Lyon", "plan": "pro"}
    assert Subscriber.objects.get(email="ben@example.com").attributes == {"plan": "free"}
    assert Subscriber.objects.get(email="emma@example.com").name == "Emma, Jr."
    assert Subscription.objects.filter(mailing_list=mailing_list, status="confirmed").count() == 3


def test_a_file_without_an_email_column_is_refused_whole():
    with pytest.raises(ImportFileError, match=r"no 'email' column .*'mail', 'name'"):
        run_import(b"mail,name\na@example.com,A\n", MailingListFactory())
    assert Subscriber.objects.count() == 0


def test_reimport_updates_but_never_resubscribes_an_unsubscribed_person():
    subscription = SubscriptionFactory(status=Subscription.Status.UNSUBSCRIBED)
    email = subscription.subscriber.email

    report = run_import(f"email,name\n{email},New Name\n".encode(), subscription.mailing_list)

    assert report.imported == 1
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert subscription.subscriber.name == "New Name"


def test_double_opt_in_imports_are_unconfirmed_unless_asked():
    double = MailingListFactory(opt_in=MailingList.OptIn.DOUBLE)
    run_import(b"email\na@example.com\n", double)
    run_import(b"email\nb@example.com\n", double, confirmed=True)

    statuses = dict(
        Subscription.objects.filter(mailing_list=double).values_list("subscriber__email", "status")
    )
    assert statuses == {"a@example.com": "unconfirmed", "b@example.com": "confirmed"}


def test_the_command_creates_the_list_when_asked_and_reports_bad_lines(tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text("email,name\nok@example.com,Ok\nbroken,Nope\n")
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match=r"no mailing list named 'Fresh'.*--create-list"):
        call_command("import_subscribers", str(path), "--list", "Fresh")
    call_command(
        "import_subscribers", str(path), "--list", "Fresh", "--create-list", stdout=out, stderr=err
    )

    assert "subscribe: 1 subscribers into 'Fresh'" in out.getvalue()
    assert f"{path}:3: skipped: 'broken' is not a valid email address" in err.getvalue()
    assert MailingList.objects.get(name="Fresh").subscribers.count() == 1


def test_update_mode_changes_known_subscribers_and_reports_unknown_ones():
    known = SubscriptionFactory(subscriber__name="Old", subscriber__attributes={"a": "1"})
    email = known.subscriber.email
    csv = f"email,name,b\n{email},New,2\nstranger@example.com,X,3\n".encode()

    report = subscribers_import_csv(stream=io.BytesIO(csv), mode="update")

    assert report.imported == 1
    assert report.skipped == [
        (3, "stranger@example.com is not a subscriber; import it with mode 'subscribe' to add it")
    ]
    subscriber = Subscriber.objects.get(email=email)
    assert (subscriber.name, subscriber.attributes) == ("New", {"a": "1", "b": "2"})
    assert not Subscriber.objects.filter(email="stranger@example.com").exists()
    assert Subscription.objects.count() == 1


def test_blocklist_mode_blocklists_known_and_unknown_addresses():
    known = SubscriptionFactory()
    csv = f"email\n{known.subscriber.email}\nnew@example.com\nbad-address\n".encode()

    report = subscribers_import_csv(stream=io.BytesIO(csv), mode="blocklist")

    assert report.imported == 2 and [line for line, _ in report.skipped] == [4]
    assert set(Subscriber.objects.values_list("email", "status")) == {
        (known.subscriber.email, "blocklisted"),
        ("new@example.com", "blocklisted"),
    }


def test_the_error_report_lists_each_skipped_line_with_its_reason():
    report = run_import(
        b'email\nok@example.com\n"quoted, bad"\nok@example.com\n', MailingListFactory()
    )
    assert "".join(report.error_report_csv()).splitlines() == [
        "line,reason",
        "3,\"'quoted, bad' is not a valid email address: An email address must have an @-sign.\"",
        '4,"ok@example.com already appears on line 2"',
    ]


def test_an_uploaded_import_runs_and_keeps_its_report(admin_client, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from subscribers.imports import subscriber_import_run
    from subscribers.models import SubscriberImport

    settings.MEDIA_ROOT = str(tmp_path)
    news = MailingListFactory()
    upload = SimpleUploadedFile("people.csv", b"email,city\na@example.com,Oslo\nnope,Rome\n")
    response = admin_client.post(
        "/admin/subscribers/subscriberimport/add/",
        {"file": upload, "mode": "subscribe", "mailing_list": news.pk},
    )
    assert response.status_code == 302
    job = SubscriberImport.objects.get()
    assert job.status == "queued"

    subscriber_import_run(import_id=job.pk)  # what the worker on the `default` queue runs

    job.refresh_from_db()
    assert (job.status, job.rows, job.imported, job.skipped, job.progress) == ("done", 2, 1, 1, 1.0)
    report = admin_client.get(f"/admin/subscribers/subscriberimport/{job.pk}/report/")
    assert b"3,\"'nope' is not a valid email address" in b"".join(report.streaming_content)
    page = admin_client.get("/admin/subscribers/subscriberimport/").content.decode()
    assert "download the report" in page and 'http-equiv="refresh"' not in page


def test_an_upload_for_subscribing_needs_a_list(admin_client, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = str(tmp_path)
    upload = SimpleUploadedFile("people.csv", b"email\na@example.com\n")
    response = admin_client.post(
        "/admin/subscribers/subscriberimport/add/", {"file": upload, "mode": "subscribe"}
    )
    assert response.status_code == 200
    assert "Choose the list to subscribe them to." in response.content.decode()


def test_export_streams_csv_that_imports_again(admin_client):
    news = MailingListFactory()
    for n, city in enumerate(["Oslo", "Rome"]):
        SubscriptionFactory(
            mailing_list=news,
            subscriber__email=f"p{n}@example.com",
            subscriber__attributes={"city": city, "n": n},
        )
    SubscriptionFactory(subscriber__email="other@example.com")

    response = admin_client.post(
        "/admin/subscribers/mailinglist/",
        {"action": "export_members", "_selected_action": [news.pk]},
    )
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert lines[0] == "email,name,status,subscription,created_at,city,n"
    assert [line.split(",")[0] for line in lines[1:]] == ["p0@example.com", "p1@example.com"]
    assert lines[1].endswith(",Oslo,0")

    Subscriber.objects.all().delete()
    report = run_import(text.encode(), MailingListFactory())
    assert report.imported == 2 and not report.skipped
    assert Subscriber.objects.get(email="p1@example.com").attributes == {"city": "Rome", "n": "1"}


def test_the_export_command_writes_a_file(tmp_path: Path):
    SubscriptionFactory(subscriber__email="a@example.com")
    target = tmp_path / "out.csv"
    call_command("export_subscribers", "--output", str(target), stderr=io.StringIO())
    assert target.read_text().splitlines()[1].startswith("a@example.com,")


@pytest.mark.parametrize(
    "raw",
    [
        "Ada@Example.COM",
        " ben+news@mail.example.org ",
        "o'neil@example.ie",
        "first.last@sub.domain.example",
        "x" * 64 + "@example.com",
        "x" * 65 + "@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a@example",
        "a@localhost",
        "a@host.local",
        "a@site.test",
        "a@example.123",
        "a@-bad.example",
        "a@xn--bcher-kva.example",
        "zoë@example.com",
        "a@bücher.example",
        '"quoted name"@example.com',
        "a@" + "b" * 64 + ".example",
        "a@[192.0.2.1]",
        "no-at-sign.example.com",
        "a@b@example.com",
    ],
)
def test_the_fast_check_agrees_with_email_validator(raw):
    from email_validator import EmailNotValidError, validate_email

    from subscribers.addresses import normalise_email

    try:
        expected = validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got = normalise_email(raw)
    except EmailNotValidError:
        got = None
    assert got == expected


def test_exported_cells_cannot_run_as_spreadsheet_formulas_and_import_back_unchanged():
    from subscribers.exports import subscribers_export_csv

    SubscriptionFactory(
        subscriber__email="evil@example.com",
        subscriber__name="=cmd|' /C calc'!A0",
        subscriber__attributes={"note": "+1 555", "plain": "ok"},
    )
    text = "".join(subscribers_export_csv(subscribers=Subscriber.objects.all()))
    row = text.splitlines()[1]
    assert "'=cmd|" in row and ",'+1 555," in row and ",ok" in row

    Subscriber.objects.all().delete()
    run_import(text.encode(), MailingListFactory())
    back = Subscriber.objects.get(email="evil@example.com")
    assert back.name == "=cmd|' /C calc'!A0"
    assert back.attributes == {"note": "+1 555", "plain": "ok"}
