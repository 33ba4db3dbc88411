from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns.admin_actions import (
    cancel,
    clone,
    pause,
    refused_lists,
    resume,
    send_test,
    start,
)
from campaigns.admin_editor import EditorViews
from campaigns.admin_filters import TagFilter
from campaigns.admin_media import CampaignAttachmentInline, TemplateAttachmentInline
from campaigns.audience import audience_count
from campaigns.models import Campaign, Condition, Template
from campaigns.rendering import TemplateError
from campaigns.sanitising import sanitise
from campaigns.services import (
    CampaignError,
    campaign_cancel,
    campaign_content_edited,
    campaign_pause,
    campaign_resend_to_non_openers,
    campaign_resume,
    campaign_send_test,
    campaign_start,
)
from campaigns.views import render_for
from mailer.campaign_report import ReportViews
from subscribers import access
from subscribers.access import ScopedRelatedFilter, ScopedToLists
from subscribers.addresses import lookup_form
from subscribers.models import Subscriber


class ConditionInline(admin.TabularInline):
    model = Condition
    fk_name = "campaign"
    extra = 0
    fields = ["kind", "negate", "attribute", "operator", "value", "other", "link", "days"]
    verbose_name = _("condition")
    verbose_name_plural = _(
        "Only subscribers for whom all of these hold: attributes, or what they did (empty: "
        "everyone on the lists)"
    )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "other":  # only campaigns the user may see are named
            kwargs["queryset"] = access.scope(
                request.user, Campaign.objects.all(), "lists", every=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        # The audience is written down when the campaign starts; later edits would not apply.
        editable = obj is None or obj.status == Campaign.Status.DRAFT
        return editable and super().has_change_permission(request, obj)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Template)
class TemplateAdmin(EditorViews):
    editor_field, editor_kind = "html", "layout"
    change_form_template = "admin/campaigns/template/change_form.html"

    list_display = ["name", "updated_at"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and "html" in form.changed_data:
            campaign_content_edited(campaigns=obj.campaign_set.all())

    def get_inlines(self, request, obj):
        # A transactional message may carry files; a campaign layout carries none.
        return [TemplateAttachmentInline] if obj and obj.kind == Template.Kind.TX else []

    def get_readonly_fields(self, request, obj=None):
        # Recipients of a sending campaign all get the layout it started with.
        if obj is not None and obj.campaign_set.filter(status__in=SENDING).exists():
            return ["name", "html"]
        return super().get_readonly_fields(request, obj)


# A campaign in these states is sending or about to: its content and audience are fixed.
SENDING = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)
CONTENT_FIELDS = ["subject", "from_email", "lists", "template", "format", "body"]


@admin.register(Campaign)
class CampaignAdmin(ScopedToLists, ReportViews, EditorViews):
    # Shown only to those who may see every list it mails (subscribers/access.py).
    list_path = "lists"
    every_list = True
    list_display = [
        "name",
        "status",
        "progress_bar",
        "sent",
        "failed",
        "total",
        "started_at",
        "report_link",
    ]
    list_filter = ["status", "kind", TagFilter, ("lists", ScopedRelatedFilter)]
    search_fields = ["name", "subject"]
    filter_horizontal = ["lists"]
    actions = [start, pause, resume, cancel, send_test, clone]
    inlines = [ConditionInline, CampaignAttachmentInline]
    readonly_fields = [
        "audience",
        "status",
        "status_reason",
        "total",
        "sent",
        "failed",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "subject", "from_email", "lists", "audience"]}),
        (_("Content"), {"fields": ["template", "format", "body"]}),
        (_("Sending"), {"fields": ["send_at", "rate_limit", "weight", "smtp_server"]}),
        (_("Tracking"), {"fields": ["track_opens", "track_clicks"]}),
        (_("Public archive"), {"fields": ["archive", "archive_slug", "archive_meta"]}),
        (
            _("Progress"),
            {
                "fields": [
                    "status",
                    "status_reason",
                    "total",
                    "sent",
                    "failed",
                    "created_at",
                    "started_at",
                    "finished_at",
                ]
            },
        ),
    ]

    list_display_links = ["name"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and set(form.changed_data) & set(CONTENT_FIELDS):
            # A paused campaign edited: its next messages are a new version (the report
            # says who got which).
            campaign_content_edited(campaigns=[obj])

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status in SENDING:
            # Every recipient gets what the campaign said when it started: pause it to edit.
            fields += [f for f in CONTENT_FIELDS if f not in fields]
        return fields

    change_form_template = "admin/campaigns/campaign/change_form.html"
    change_list_template = "admin/campaigns/campaign/change_list.html"

    def changelist_view(self, request, extra_context=None):
        """While campaigns send, their progress bars move without a reload."""
        sending = Campaign.objects.filter(
            status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED]
        ).exists()
        return super().changelist_view(request, {**(extra_context or {}), "refresh": sending})

    def get_urls(self):
        report = self.admin_site.admin_view(self.report_view)
        act = self.admin_site.admin_view(require_POST(self.act_view))
        return [
            path("<int:campaign_id>/report/", report, name="campaigns_campaign_report"),
            path(
                "<int:campaign_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
            path("<int:campaign_id>/act/<str:action>/", act, name="campaigns_campaign_act"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        """The message as a chosen subscriber would get it, HTML and text; test sends."""
        campaign = get_object_or_404(
            self.get_queryset(request).select_related("template"), pk=campaign_id
        )
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        may_view_subscribers = request.user.has_perm("subscribers.view_subscriber")
        if request.method == "POST" and self.has_change_permission(request, campaign):
            to = [a for a in request.POST.get("to", "").replace(",", " ").split() if a]
            try:
                sent_to = campaign_send_test(
                    campaign=campaign,
                    to=to,
                    as_subscriber=(
                        lookup_form(request.POST.get("as_subscriber", "")) or None
                        if may_view_subscribers
                        else None
                    ),
                )
            except CampaignError as refused:
                self.message_user(request, str(refused), messages.ERROR)
            else:
                self.message_user(
                    request, _("Test on its way to %(value)s.") % {"value": ", ".join(sent_to)}
                )
            return redirect(request.get_full_path())
        # A real subscriber's name and attributes only for those who may view subscribers;
        # the others see a sample recipient.
        wanted = lookup_form(request.GET.get("subscriber", "")) if may_view_subscribers else ""
        # Only subscribers of lists the user may see.
        known = access.scope(request.user, Subscriber.objects.all(), "subscriptions__mailing_list")
        subscriber = known.filter(email=wanted).first() if wanted else None
        if subscriber is None and not wanted and may_view_subscribers:
            subscriber = known.filter(mailing_lists__campaigns=campaign).first()
        problem = ""
        subject = text = ""
        html: str | None = None
        try:
            subject, text, html = render_for(campaign, subscriber)
        except TemplateError as error:
            problem = str(error)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Preview: %(name)s") % {"name": campaign.name},
            "opts": self.model._meta,
            "campaign": campaign,
            "subscriber": subscriber,
            "wanted": wanted,
            "not_found": bool(wanted) and subscriber is None,
            "subject": subject,
            "text": text,
            # Shown in a sandboxed frame, after nh3 removed scripts and event handlers.
            "html": sanitise(html) if html is not None else None,
            "error": problem,
            "can_change": self.has_change_permission(request, campaign),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/preview.html", context)

    ACTIONS = {
        "start": (campaign_start, _("Started %(campaign)s."), {Campaign.Status.DRAFT}),
        "pause": (
            campaign_pause,
            _("Paused %(campaign)s."),
            {Campaign.Status.RUNNING, Campaign.Status.SCHEDULED},
        ),
        "resume": (campaign_resume, _("Resumed %(campaign)s."), {Campaign.Status.PAUSED}),
        "cancel": (
            campaign_cancel,
            _("Cancelled %(campaign)s."),
            {
                Campaign.Status.DRAFT,
                Campaign.Status.SCHEDULED,
                Campaign.Status.RUNNING,
                Campaign.Status.PAUSED,
            },
        ),
    }

    def has_send_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        """Start, pause, resume and cancel: the Campaign manager's, not the Editor's."""
        return request.user.has_perm("campaigns.send_campaign")

    def available_actions(self, campaign: Campaign) -> list[str]:
        return [name for name, row in self.ACTIONS.items() if campaign.status in row[2]]

    def act_view(self, request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
        campaign = get_object_or_404(self.get_queryset(request), pk=campaign_id)
        if action == "test":
            allowed = self.has_change_permission(request, campaign)
        elif action == "resend":
            allowed = self.has_add_permission(request)
        else:
            allowed = self.has_send_permission(request, campaign)
        if not allowed:
            raise PermissionDenied
        back = reverse("admin:campaigns_campaign_report", args=[campaign.pk])
        if action == "test":
            send_test(self, request, Campaign.objects.filter(pk=campaign.pk))
            return redirect(back)
        if action == "resend":
            return self.resend(request, campaign, back)
        if action not in self.ACTIONS:
            self.message_user(
                request, _("Unknown action %(action)s.") % {"action": repr(action)}, messages.ERROR
            )
            return redirect(back)
        service, done_message, _states = self.ACTIONS[action]
        try:
            if service in (campaign_start, campaign_resume) and (
                why := refused_lists(request, campaign)
            ):
                raise CampaignError(why)
            service(campaign=campaign)
        except CampaignError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(
                request,
                done_message % {"campaign": campaign.name},
                messages.SUCCESS,
            )
        return redirect(back)

    def resend(self, request: HttpRequest, campaign: Campaign, back: str) -> HttpResponse:
        """A draft follow-up to those who did not open it, with a new subject."""
        try:
            copy = campaign_resend_to_non_openers(
                campaign=campaign, subject=request.POST.get("subject", "")
            )
        except CampaignError as error:
            self.message_user(request, str(error), messages.ERROR)
            return redirect(back)
        count = audience_count(copy.pk, copy.condition_triples(), copy.behaviours())
        self.message_user(
            request,
            _("Made the draft %(copy)s: %(count)s subscribers match now. Check it, then start it.")
            % {"copy": copy.name, "count": format(count, ",")},
            messages.SUCCESS,
        )
        return redirect(reverse("admin:campaigns_campaign_change", args=[copy.pk]))

    @admin.display(description=_("progress"))
    def progress_bar(self, obj: Campaign) -> str:
        percent = round(obj.progress * 100)
        return format_html(
            '<progress value="{}" max="100" title="{}%"></progress> {} / {}',
            percent,
            percent,
            obj.sent + obj.failed,
            obj.total,
        )

    @admin.display(description=_("audience"))
    def audience(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "Save the campaign to count who it goes to."
        if obj.started_at is not None:
            return f"{obj.total:,} recipients, fixed when it started."
        count = audience_count(obj.pk, obj.condition_triples(), obj.behaviours())
        return (
            f"{count:,} subscribers match the saved lists and conditions now (enabled, "
            "confirmed where the list needs it, each once). Save to count again after a change."
        )

    @admin.display(description=_("report"))
    def report_link(self, obj: Campaign) -> str:
        return format_html(
            '<a href="{}">report</a>', reverse("admin:campaigns_campaign_report", args=[obj.pk])
        )


from campaigns import ab_admin  # noqa: E402, F401  (registers the A/B tests' pages)
