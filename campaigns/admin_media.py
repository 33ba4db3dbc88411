"""The media library in the admin: upload (checked: campaigns/media.py), browse with
thumbnails, and the JSON the editor's picker reads and uploads through; and the inlines that
attach library files to campaigns and transactional templates."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns.media import Media, size_text

PICKER_SIZE = 200


def as_json(media: Media) -> dict[str, Any]:
    return {
        "id": media.pk,
        "name": media.name,
        "kind": media.kind,
        "url": media.url,
        "thumbnail": media.thumbnail.url if media.thumbnail else None,
        "alt": media.alt,
        "width": media.width,
        "height": media.height,
        "size": media.size,
    }


class MediaForm(forms.ModelForm):
    class Meta:
        model = Media
        fields = ["file", "alt"]


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    form = MediaForm
    list_display = ["preview", "name", "kind", "size_kb", "dimensions", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "alt"]
    readonly_fields = ["preview", "address", "content_type", "size_kb", "dimensions"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["file", "alt"]
        return ["preview", "name", "alt", "address", "content_type", "size_kb", "dimensions"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.uploaded_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("preview"))
    def preview(self, obj: Media) -> str:
        if obj.thumbnail:
            return format_html(
                '<img src="{}" alt="{}" class="wb-thumb">', obj.thumbnail.url, obj.alt
            )
        return format_html('<span class="wb-file">{}</span>', obj.content_type)

    @admin.display(description=_("address to use"))
    def address(self, obj: Media) -> str:
        return format_html('<a href="{0}">{0}</a>', obj.url)

    @admin.display(description=_("size"))
    def size_kb(self, obj: Media) -> str:
        return f"{obj.size / 1024:.0f} KB"

    @admin.display(description=_("pixels"))
    def dimensions(self, obj: Media) -> str:
        return f"{obj.width} x {obj.height}" if obj.width else ""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("library.json", view(self.library_json), name="campaigns_media_library"),
            path("upload.json", view(self.upload_json), name="campaigns_media_upload"),
            *super().get_urls(),
        ]

    def library_json(self, request: HttpRequest) -> JsonResponse:
        """The newest files for the editor's picker (images only with ?kind=image)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = Media.objects.all()
        if request.GET.get("kind") in (Media.Kind.IMAGE, Media.Kind.FILE):
            rows = rows.filter(kind=request.GET["kind"])
        if query := request.GET.get("q", "").strip():
            rows = rows.filter(name__icontains=query)
        return JsonResponse({"data": [as_json(m) for m in rows[:PICKER_SIZE]]})

    def upload_json(self, request: HttpRequest) -> JsonResponse:
        """An upload from the editor (the same checks as the admin's form)."""
        if request.method != "POST":
            return JsonResponse({"error": "Send the file with POST."}, status=405)
        if not self.has_add_permission(request):
            raise PermissionDenied
        return _upload(request)


def _upload(request: HttpRequest) -> JsonResponse:
    form = MediaForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = [str(e) for field in form.errors.values() for e in field]
        return JsonResponse({"error": " ".join(errors)}, status=400)
    media = form.save(commit=False)
    media.uploaded_by = request.user
    media.save()
    return JsonResponse({"data": as_json(media)})


def attachments_problem(media: list[Media]) -> str | None:
    total = sum(m.size for m in media)
    if total > settings.ATTACHMENTS_MAX_BYTES:
        return (
            f"The attachments come to {size_text(total)}; at most "
            f"{size_text(settings.ATTACHMENTS_MAX_BYTES)} may go with each message "
            "(ATTACHMENTS_MAX_BYTES)."
        )
    return None


class AttachmentsFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [
            form.cleaned_data["media"]
            for form in self.forms
            if form.cleaned_data.get("media") and not form.cleaned_data.get("DELETE")
        ]
        if problem := attachments_problem(kept):
            raise ValidationError(problem)


class AttachmentInline(admin.TabularInline):
    """Files from the library on a campaign or a transactional template."""

    formset = AttachmentsFormSet
    extra = 0
    verbose_name = _("attachment")
    verbose_name_plural = _("Attachments (files from the media library, sent with every message)")
    autocomplete_fields = ["media"]


class CampaignAttachmentInline(AttachmentInline):
    model = Media.campaigns.through


class TemplateAttachmentInline(AttachmentInline):
    model = Media.templates.through
