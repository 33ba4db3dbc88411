from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.services import ImportFileError, subscribers_import_csv
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

    assert "Imported 1 subscribers into 'Fresh'" in out.getvalue()
    assert f"{path}:3: skipped: 'broken' is not a valid email address" in err.getvalue()
    assert MailingList.objects.get(name="Fresh").subscribers.count() == 1
