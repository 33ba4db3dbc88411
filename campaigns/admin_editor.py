"""The content editor's server side (the editor itself: workbench/editor): the draft rendered
for the live preview, a body converted when the format changes (with what would be lost),
and the variables the editor offers. Mixed into the campaign and template admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_noop

from campaigns import convert
from campaigns.layouts import Template
from campaigns.rendering import PreparedContent, TemplateError, sample_context
from campaigns.sanitising import sanitise
from subscribers import access
from subscribers.models import Subscriber

ATTRIBUTE_SAMPLE = 500
SAMPLE_BODY = "<h2>A campaign's body</h2><p>Each campaign's own text goes here.</p>"
# The editor's own words (workbench/editor), handed to it translated (editor_assets.html).
UI_TEXTS = [
    gettext_noop("Preview"),
    gettext_noop("Rich text"),
    gettext_noop("Edit as rich text"),
    gettext_noop("Edit the HTML code"),
    gettext_noop("Bold"),
    gettext_noop("Italic"),
    gettext_noop("Heading"),
    gettext_noop("Subheading"),
    gettext_noop("Bulleted list"),
    gettext_noop("Numbered list"),
    gettext_noop("Quote"),
    gettext_noop("Link"),
    gettext_noop("Link the selected text"),
    gettext_noop("Address of the link (https://…, or a variable such as {{ unsubscribe_url }})"),
    gettext_noop("Undo"),
    gettext_noop("Redo"),
    gettext_noop("Image"),
    gettext_noop("Insert an image from the media library"),
    gettext_noop("Insert a variable…"),
    gettext_noop("Body"),
    gettext_noop("Layout HTML"),
    gettext_noop(
        "Rich text cannot keep all of this HTML: tables, styles, layout blocks and template "
        "tags between elements would be simplified or lost. Switch anyway?"
    ),
    gettext_noop("Switching from %(from)s to %(to)s would lose: %(lost)s. Switch anyway?"),
    gettext_noop("Converted; lost: %(lost)s."),
    gettext_noop("Converted to %(format)s."),
    gettext_noop("Media library"),
    gettext_noop("Upload an image"),
    gettext_noop("Close"),
    gettext_noop("Choose an image, or upload one"),
    gettext_noop("The library has no images yet."),
]
LINKS = [
    ("Unsubscribe link", "{{ unsubscribe_url }}"),
    ("Preferences link", "{{ preferences_url }}"),
    ("View in a browser link", "{{ view_url }}"),
]


def variables(request: HttpRequest, *, layout: bool = False, tx: bool = False) -> list[dict]:
    """What the editor's menu offers: the subscriber's fields, the attributes the user's
    subscribers have (names only), the campaign's name and the links."""
    found = [
        {"label": "Name", "tag": "{{ subscriber.name }}"},
        {"label": "E-mail address", "tag": "{{ subscriber.email }}"},
    ]
    rows = access.scope(request.user, Subscriber.objects.all(), "subscriptions__mailing_list")
    names: set[str] = set()
    for attributes in rows.order_by("-pk").values_list("attributes", flat=True)[:ATTRIBUTE_SAMPLE]:
        if isinstance(attributes, dict):
            names.update(key for key in attributes if key.isidentifier())
    found += [
        {"label": f"Attribute: {name}", "tag": f"{{{{ subscriber.attributes.{name} }}}}"}
        for name in sorted(names)[:50]
    ]
    found.append({"label": "Campaign name", "tag": "{{ campaign.name }}"})
    found += [{"label": label, "tag": tag} for label, tag in LINKS]
    if tx:
        found.append({"label": "Request data", "tag": "{{ tx.data.your_key }}"})
    if layout:
        found.insert(0, {"label": "Where the body goes", "tag": "{{ content }}"})
    return found


class EditorViews(admin.ModelAdmin):
    """Preview and conversion endpoints, and the body field set up for the editor."""

    editor_field = "body"
    editor_kind = "body"

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("editor/preview/", view(self.preview_draft), name=f"{name}_editor_preview"),
            path("editor/convert/", view(self.convert_body), name=f"{name}_editor_convert"),
            *super().get_urls(),
        ]

    def _may_edit(self, request: HttpRequest) -> None:
        if request.method != "POST":
            raise PermissionDenied
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied

    def preview_draft(self, request: HttpRequest) -> JsonResponse:
        """The draft as a sample subscriber gets it, sanitised as every preview is."""
        self._may_edit(request)
        post = request.POST
        tx = self.editor_kind == "layout" and post.get("kind") == Template.Kind.TX
        layout = None
        if post.get("template", "").isdigit():
            template = Template.objects.filter(pk=int(post["template"])).first()
            layout = template.html if template else None
        fields: dict[str, Any] = {
            "subject": post.get("subject", "") or "(no subject)",
            "body": post.get("body", ""),
            "layout": layout,
            "format": post.get("format", "html"),
        }
        if self.editor_kind == "layout" and not tx:  # a layout, around a sample body
            fields |= {"body": SAMPLE_BODY, "layout": post.get("body", ""), "format": "html"}
        try:
            content = PreparedContent(**fields, tx=tx).render(sample_context(tx=tx))
        except TemplateError as error:
            return JsonResponse({"error": str(error)})
        html = content.html if content.html is not None else f"<pre>{content.text}</pre>"
        return JsonResponse({"subject": content.subject, "html": sanitise(html), "error": ""})

    def convert_body(self, request: HttpRequest) -> JsonResponse:
        self._may_edit(request)
        body, source, target = (request.POST.get(k, "") for k in ("body", "from", "to"))
        try:
            converted = convert.convert(body, source, target)
        except ValueError as error:
            return JsonResponse({"error": str(error)}, status=400)
        return JsonResponse({"body": converted, "lost": convert.losses(body, source, target)})

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is None or db_field.name != self.editor_field:
            return field
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}"
        attrs = {
            "data-editor": self.editor_kind,
            "data-preview-url": reverse(f"{name}_editor_preview"),
            "data-convert-url": reverse(f"{name}_editor_convert"),
            "data-variables": "editor-variables",
        }
        if self.editor_kind == "body":
            attrs["data-format-field"] = "id_format"
        if request.user.has_perm("campaigns.view_media"):
            attrs["data-library-url"] = reverse("admin:campaigns_media_library")
        if request.user.has_perm("campaigns.add_media"):
            attrs["data-upload-url"] = reverse("admin:campaigns_media_upload")
        field.widget.attrs.update(attrs)
        return field

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        kind = self.editor_kind
        offered = variables(request, layout=kind == "layout", tx=kind == "layout")
        labels = {text: gettext(text) for text in UI_TEXTS}
        extra = {**(extra_context or {}), "editor_variables": offered, "editor_labels": labels}
        return super().changeform_view(request, object_id, form_url, extra)
