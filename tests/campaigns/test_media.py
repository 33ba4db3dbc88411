"""The media library: uploads checked by their bytes, images opened with Pillow and given a
thumbnail, files served as what they are and never run, and only to whom may see them in the
admin; attachments within their limit, encoded once and sent with every message."""

from __future__ import annotations

import email
import email.policy
import io
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from campaigns.models import Media
from mailer.compose import CampaignComposer
from tests.factories import CampaignFactory, MailingListFactory, TemplateFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]


@pytest.fixture(autouse=True)
def library(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "library": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "library"), "base_url": "/media/library/"},
        },
    }
    from django.core.files.storage import storages

    storages._storages = {}  # the library folder of this test
    yield
    storages._storages = {}


def png(width: int = 800, height: int = 600, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "#3d7ea6" if mode == "RGB" else 0).save(out, format="PNG")
    return out.getvalue()


def upload(client, name: str, content: bytes, content_type: str = "application/octet-stream"):
    return client.post(
        "/admin/campaigns/media/upload.json",
        {"file": SimpleUploadedFile(name, content, content_type), "alt": "A picture"},
    )


def member(client, role: str):
    user = User.objects.create_user(
        f"{role.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


def test_an_image_is_checked_thumbnailed_and_served_as_what_it_is(admin_client, client):
    response = upload(admin_client, "spring.png", png())
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert (data["kind"], data["width"], data["height"]) == ("image", 800, 600)
    assert data["url"].startswith("http") and data["url"].endswith(".png")
    assert "spring" not in data["url"]  # stored under a random name
    media = Media.objects.get()
    with Image.open(media.thumbnail.open("rb")) as thumbnail:
        assert thumbnail.size == (320, 240)

    served = client.get(f"/media/library/{media.file.name}")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"".join(served.streaming_content) == png()
    assert client.get(f"/media/library/{media.thumbnail.name}")["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG and HTML are refused",
        ),
        ("page.html", b"<script>alert(document.cookie)</script>", "cannot be uploaded"),
        ("photo.png", b"<html><script>alert(1)</script></html>", "not an image"),
        ("bomb.png", png(9000, 9000, "1"), "9000 by 9000 pixels"),
        ("report.pdf", b"MZ\x90\x00 an executable", "not a .pdf file"),
        ("notes.txt", b"text\x00with a null byte", "not a .txt file"),
        ("tool.exe", b"MZ\x90\x00", "cannot be uploaded"),
    ],
    ids=["svg", "html", "html-as-png", "decompression-bomb", "fake-pdf", "binary-as-text", "exe"],
)
def test_uploads_that_are_not_what_they_say_are_refused_with_the_reason(
    admin_client, name, content, problem
):
    response = upload(admin_client, name, content)
    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert not Media.objects.exists()


def test_a_file_over_the_size_limit_is_refused(admin_client, settings):
    settings.MEDIA_MAX_BYTES = 10_000
    response = upload(admin_client, "big.pdf", b"%PDF-" + b"0" * 20_000)
    assert response.status_code == 400 and "at most" in response.json()["error"]


def test_files_are_downloaded_never_shown_and_only_library_files_are_served(admin_client, client):
    upload(admin_client, "terms.pdf", b"%PDF-1.4 terms")
    media = Media.objects.get()
    served = client.get(f"/media/library/{media.file.name}")
    assert served["Content-Type"] == "application/pdf"
    assert served["Content-Disposition"] == 'attachment; filename="terms.pdf"'
    assert "sandbox" in served["Content-Security-Policy"]
    assert client.get("/media/library/not-in-the-library.pdf").status_code == 404
    assert client.get("/media/imports/2026/12/customers.csv").status_code == 404


def test_the_picker_and_uploads_need_the_library_permissions(client):
    Media.objects.create(
        name="x.png",
        file=SimpleUploadedFile("x.png", png()),
        kind="image",
        content_type="image/png",
    )
    analyst = member(client, "Analyst")
    assert analyst.get("/admin/campaigns/media/library.json").status_code == 200
    assert upload(analyst, "y.png", png()).status_code == 403
    assert Media.objects.count() == 1
    client.logout()
    assert client.get("/admin/campaigns/media/library.json").status_code == 302  # to the login


def test_attachments_over_their_limit_are_refused_on_the_campaign(admin_client, settings):
    settings.ATTACHMENTS_MAX_BYTES = 1024
    upload(admin_client, "terms.pdf", b"%PDF-" + b"0" * 2000)
    media = Media.objects.get()
    campaign = CampaignFactory(lists=[MailingListFactory()])
    prefix = "Media_campaigns-"
    form = {
        "name": campaign.name,
        "subject": campaign.subject,
        "from_email": campaign.from_email,
        "lists": [campaign.lists.get().pk],
        "format": "html",
        "body": campaign.body,
        "weight": 1,
        "archive_meta": "{}",
        "track_opens": "on",
        "track_clicks": "on",
        "conditions-TOTAL_FORMS": 0,
        "conditions-INITIAL_FORMS": 0,
        f"{prefix}TOTAL_FORMS": 1,
        f"{prefix}INITIAL_FORMS": 0,
        f"{prefix}0-media": media.pk,
    }
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the reason
    assert "at most 1 KB may go with each message" in response.content.decode()
    assert not campaign.attachments.exists()


def test_attachments_are_encoded_once_and_sent_with_every_message(admin_client):
    upload(admin_client, "Préface.pdf", b"%PDF-1.4 " + bytes(range(256)) * 40)
    campaign = CampaignFactory(lists=[MailingListFactory()])
    campaign.attachments.set(Media.objects.all())
    composer = CampaignComposer(campaign, campaign.content())
    messages = [
        composer.message(
            delivery_id=n, subscriber_id=n, email=f"p{n}@example.com", name=f"P{n}", attributes={}
        )
        for n in (1, 2)
    ]
    parts = [
        list(email.message_from_bytes(m, policy=email.policy.default).iter_attachments())
        for m in messages
    ]
    for found in parts:
        assert [(p.get_filename(), p.get_content_type()) for p in found] == [
            ("Préface.pdf", "application/pdf")
        ]
        assert found[0].get_content() == b"%PDF-1.4 " + bytes(range(256)) * 40
    assert composer.attachments in messages[0] and composer.attachments in messages[1]


def test_a_transactional_template_carries_its_attachments(admin_client):
    from mailer import tx

    upload(admin_client, "invoice.pdf", b"%PDF-1.4 invoice")
    template = TemplateFactory(kind="tx", subject="Your invoice", html="<p>Attached.</p>")
    template.attachments.set(Media.objects.all())
    assert [(a.filename, a.content) for a in tx.template_attachments(template)] == [
        ("invoice.pdf", b"%PDF-1.4 invoice")
    ]
