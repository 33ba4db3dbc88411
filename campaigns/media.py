"""The media library: images and files that campaigns show or attach, and transactional
templates attach. Stored through Django's storage API in the `library` storage (a local folder
by default, S3-compatible storage by configuration: settings/storage.py), apart from the
private uploads (subscriber imports). Imported by campaigns.models.

Each upload is checked before it is kept: its size, its type read from its bytes (never from
its name), images opened with Pillow (and refused when they would decode to an enormous
picture), and a thumbnail made. SVG and HTML are refused: they can carry scripts.
"""

from __future__ import annotations

import io
import uuid
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import models
from django.utils.translation import gettext_lazy as _

# Pillow's format name -> the type the file is served and attached as.
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# Other files by extension, each with the first bytes it must start with ("" for text).
FILE_TYPES = {
    "pdf": ("application/pdf", b"%PDF-"),
    "txt": ("text/plain", b""),
    "csv": ("text/csv", b""),
    "ics": ("text/calendar", b"BEGIN:VCALENDAR"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", b"PK"),
    "odt": ("application/vnd.oasis.opendocument.text", b"PK"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", b"PK"),
    "zip": ("application/zip", b"PK"),
}
MAX_PIXELS = 40_000_000
THUMBNAIL = (320, 320)


def size_text(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def library_storage() -> Any:
    return storages["library"]


def _stored_name(instance: Media, filename: str) -> str:
    extension = PurePosixPath(filename).suffix.lower()[:10]
    return f"{uuid.uuid4().hex}{extension}"


class Media(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        FILE = "file", _("File")

    name = models.CharField(
        _("name"), max_length=200, help_text=_("The file's name as it was uploaded.")
    )
    file = models.FileField(
        _("file"), storage=library_storage, upload_to=_stored_name, max_length=200
    )
    thumbnail = models.FileField(
        _("thumbnail"), storage=library_storage, blank=True, max_length=200
    )
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices, editable=False)
    content_type = models.CharField(_("content type"), max_length=120, editable=False)
    size = models.PositiveIntegerField(_("size"), default=0, editable=False)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True, editable=False)
    alt = models.CharField(
        _("description"),
        max_length=300,
        blank=True,
        help_text=_("What an image shows (its alt text)."),
    )
    uploaded_by = models.ForeignKey(
        "auth.User",
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Sent with every message of these campaigns and transactional templates.
    campaigns = models.ManyToManyField(
        "campaigns.Campaign", verbose_name=_("campaigns"), related_name="attachments", blank=True
    )
    templates = models.ManyToManyField(
        "campaigns.Template", verbose_name=_("templates"), related_name="attachments", blank=True
    )

    class Meta:
        verbose_name, verbose_name_plural = _("media file"), _("media library")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        new = self.pk is None
        super().save(*args, **kwargs)
        if new and self.kind == self.Kind.IMAGE and not self.thumbnail:
            self.thumbnail.save(f"thumb-{uuid.uuid4().hex}.png", _thumbnail(self.file), save=False)
            Media.objects.filter(pk=self.pk).update(thumbnail=self.thumbnail.name)

    def clean(self) -> None:
        if self.file and not self.pk:
            checked = check_upload(self.file, self.file.name or "")
            self.kind, self.content_type, self.size = (
                checked["kind"],
                checked["type"],
                checked["size"],
            )
            self.width, self.height = checked.get("width"), checked.get("height")
            self.name = self.name or PurePosixPath(self.file.name or "").name[:200]

    @property
    def url(self) -> str:
        """The address a message can use: absolute, on the site or the storage's host."""
        url = self.file.url
        return url if "://" in url else settings.SITE_URL.rstrip("/") + url

    def read(self) -> bytes:
        with self.file.open("rb") as handle:
            return handle.read()


def check_upload(upload: Any, filename: str) -> dict[str, Any]:
    """The upload's kind, type and size, or ValidationError saying what is wrong."""
    limit = settings.MEDIA_MAX_BYTES
    size = upload.size
    if size > limit:
        raise ValidationError(
            _("%(filename)s is %(value)s; files may be at most %(value2)s (MEDIA_MAX_BYTES).")
            % {"filename": filename, "value": size_text(size), "value2": size_text(limit)}
        )
    upload.seek(0)
    head = upload.read(64)
    upload.seek(0)
    extension = PurePosixPath(filename).suffix.lower().lstrip(".")
    if extension in ("jpg", "jpeg", "png", "gif", "webp") or head[:4] in (
        b"\x89PNG",
        b"GIF8",
        b"\xff\xd8\xff\xe0",
        b"\xff\xd8\xff\xe1",
    ):
        return {"kind": Media.Kind.IMAGE, "size": size, **_check_image(upload, filename)}
    if extension not in FILE_TYPES:
        allowed = ", ".join(["jpg", "png", "gif", "webp", *FILE_TYPES])
        raise ValidationError(
            _(
                "%(filename)s: files of this type cannot be uploaded. Allowed: "
                "%(allowed)s (SVG and HTML are refused: they can carry scripts)."
            )
            % {"filename": filename, "allowed": allowed}
        )
    content_type, magic = FILE_TYPES[extension]
    if not head.startswith(magic) or (not magic and b"\x00" in head):
        raise ValidationError(
            _("%(filename)s is not a .%(extension)s file: its content is not.")
            % {"filename": filename, "extension": extension}
        )
    return {"kind": Media.Kind.FILE, "type": content_type, "size": size}


def _check_image(upload: Any, filename: str) -> dict[str, Any]:
    # Pillow is loaded by the processes that take uploads, not by every sender (3 MB each).
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(upload) as image:
            width, height, found = image.width, image.height, image.format
            if width * height > MAX_PIXELS:
                raise ValidationError(
                    _(
                        "%(filename)s is %(width)s by %(height)s pixels; images may have at "
                        "most %(value)s million pixels."
                    )
                    % {
                        "filename": filename,
                        "width": width,
                        "height": height,
                        "value": MAX_PIXELS // 1000000,
                    }
                )
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValidationError(
            _("%(filename)s is not an image that can be opened (%(error)s).")
            % {"filename": filename, "error": error}
        ) from None
    finally:
        upload.seek(0)
    if found not in IMAGE_TYPES:
        raise ValidationError(
            _("%(filename)s is a %(found)s image; upload JPEG, PNG, GIF or WebP.")
            % {"filename": filename, "found": found}
        )
    return {"type": IMAGE_TYPES[found], "width": width, "height": height}


def _thumbnail(file: Any) -> ContentFile:
    from PIL import Image

    with file.open("rb") as handle, Image.open(handle) as image:
        image.thumbnail(THUMBNAIL)
        out = io.BytesIO()
        image.convert("RGBA").save(out, format="PNG")
    return ContentFile(out.getvalue())
