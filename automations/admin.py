"""Sequences in the admin: the trigger, lists and steps on one page (a send step's subject
and body written in place, its message opened as a campaign for layout, preview and test),
actions to activate, pause and resume, new versions of the steps, and a report per step."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from automations import reports
from automations.models import Enrollment, Sequence, Step
from automations.services import (
    SequenceError,
    sequence_activate,
    sequence_enroll,
    sequence_enroll_import,
    sequence_new_version,
    sequence_pause,
    step_message,
    sync_messages,
)
from campaigns.admin_filters import TagFilter
from campaigns.models import Campaign
from subscribers import access
from subscribers.access import ScopedToLists
from subscribers.addresses import lookup_form
from subscribers.models import Subscriber, SubscriberImport


class StepForm(forms.ModelForm):
    subject = forms.CharField(
        required=False, max_length=998, help_text=_("Send: the message's subject.")
    )
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Send: the message's body (HTML, Django template language, e.g. "
            "{{ subscriber.name }}). Layout, format, preview and test: open the message."
        ),
    )

    class Meta:
        model = Step
        fields = [
            "position",
            "kind",
            "wait_seconds",
            "wait_weekday",
            "wait_time",
            "subject",
            "body",
            "test",
            "attribute",
            "operator",
            "value",
            "mailing_list",
            "go_to",
            "event",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.campaign_id:
            self.fields["subject"].initial = self.instance.campaign.subject
            self.fields["body"].initial = self.instance.campaign.body

    def clean(self):
        data = super().clean()
        if data.get("kind") == Step.Kind.SEND and not self.instance.campaign_id:
            for field in ("subject", "body"):
                if not data.get(field):
                    self.add_error(field, "A send step needs its message's subject and body.")
        return data


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    extra = 0

    class Media:
        js = ["automations/steps.js"]  # shows each step's own fields

    fieldsets = [
        (None, {"fields": [("position", "kind"), ("wait_seconds", "wait_weekday", "wait_time")]}),
        (None, {"fields": ["subject", "body"]}),
        (None, {"fields": [("test", "attribute", "operator", "value"), ("mailing_list", "go_to")]}),
        (None, {"fields": ["event"]}),
    ]

    def get_queryset(self, request):
        # The steps of the current version; older ones stay for those still on them.
        return super().get_queryset(request).filter(version=_current_version(request))

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and editable_steps(obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and editable_steps(obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and editable_steps(obj)


def _current_version(request: HttpRequest) -> int:
    return getattr(request, "_sequence_version", 1)


def editable_steps(sequence: Sequence | None) -> bool:
    """Steps change while nobody is on them and the sequence is not active; else pause it
    and give it a new version."""
    if sequence is None:
        return True
    return (
        sequence.status != Sequence.Status.ACTIVE
        and not sequence.enrollments.filter(version=sequence.version).exists()
    )


def _run(modeladmin, request, queryset, action, done_message, **options) -> None:
    done = 0
    for sequence in queryset:
        refused = access.refused_lists(request.user, sequence.lists.all())
        if action is sequence_activate and refused:
            names = ", ".join(m.name for m in refused)
            modeladmin.message_user(
                request,
                _(
                    "%(sequence)s mails %(names)s, which you may not send to; ask an Admin to "
                    "give you the list (its Object permissions page)."
                )
                % {"sequence": sequence.name, "names": names},
                messages.ERROR,
            )
            continue
        try:
            action(sequence=sequence, **options)
            done += 1
        except SequenceError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
    if done:
        modeladmin.message_user(
            request,
            done_message % {"count": done},
            messages.SUCCESS,
        )


@admin.action(description=_("Activate or resume selected sequences"), permissions=["run"])
def activate(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, sequence_activate, _("Activated %(count)s sequence(s)."))


@admin.action(
    description=_("Resume, moving everyone on the way to the current steps"), permissions=["run"]
)
def resume_moving(modeladmin, request, queryset) -> None:
    _run(
        modeladmin,
        request,
        queryset,
        sequence_activate,
        _("Resumed %(count)s sequence(s)."),
        move_in_flight=True,
    )


@admin.action(description=_("Pause selected sequences"), permissions=["run"])
def pause(modeladmin, request, queryset) -> None:
    _run(modeladmin, request, queryset, sequence_pause, _("Paused %(count)s sequence(s)."))


@admin.action(
    description=_("Give selected paused sequences new steps (a new version)"),
    permissions=["change"],
)
def new_version(modeladmin, request, queryset) -> None:
    _run(
        modeladmin,
        request,
        queryset,
        sequence_new_version,
        _("New version of %(count)s sequence(s)."),
    )


@admin.register(Sequence)
class SequenceAdmin(ScopedToLists, admin.ModelAdmin):
    # Shown only to those who may see every list it mails (subscribers/access.py).
    list_path = "lists"
    every_list = True
    list_display = ["name", "status", "trigger", "tag_list", "version", "waiting", "report"]
    list_filter = ["status", "trigger", TagFilter]
    search_fields = ["name"]
    filter_horizontal = ["lists"]
    actions = [activate, pause, resume_moving, new_version]
    inlines = [StepInline]
    readonly_fields = ["status", "version", "activated_at"]
    fieldsets = [
        (None, {"fields": ["name", "tags", "lists", "status", "version", "activated_at"]}),
        (
            _("Trigger"),
            {
                "fields": [
                    "trigger",
                    "trigger_list",
                    "trigger_event",
                    ("date_attribute", "date_offset_days", "date_yearly"),
                ]
            },
        ),
        (_("Sending"), {"fields": ["timezone", "weight", "rate_limit"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(waiting_count=Count("enrollments", filter=Q(enrollments__state="active")))
        )

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("automations.run_sequence")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sequence = Sequence.objects.filter(pk=object_id).first()
        request._sequence_version = sequence.version if sequence else 1  # type: ignore[attr-defined]
        context = {**(extra_context or {}), "sequence": sequence}
        return super().change_view(request, object_id, form_url, context)

    def save_formset(self, request, form, formset, change) -> None:
        sequence: Sequence = form.instance
        steps = formset.save(commit=False)
        for obj in formset.deleted_objects:
            campaign = obj.campaign
            obj.delete()
            if campaign is not None and not campaign.deliveries.exists():
                campaign.delete()
        for step, step_form in ((f.instance, f) for f in formset.forms if f.instance in steps):
            step.sequence, step.version = sequence, sequence.version
            subject, body = step_form.cleaned_data["subject"], step_form.cleaned_data["body"]
            if step.kind == Step.Kind.SEND and step.campaign is None:
                step.campaign = step_message(
                    sequence, position=step.position, subject=subject, body=body
                )
            elif step.campaign is not None and (subject or body):
                Campaign.objects.filter(pk=step.campaign_id).update(
                    subject=subject or step.campaign.subject, body=body or step.campaign.body
                )
            step.save()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        sync_messages(form.instance)  # its lists, weight and rate, on every step's message

    @admin.display(description=_("tags"))
    def tag_list(self, obj: Sequence) -> str:
        return ", ".join(obj.tags or [])

    @admin.display(description=_("on their way"), ordering="waiting_count")
    def waiting(self, obj: Sequence) -> int:
        return getattr(obj, "waiting_count", 0)

    @admin.display(description=_("report"))
    def report(self, obj: Sequence) -> str:
        url = reverse("admin:automations_sequence_report", args=[obj.pk])
        return format_html('<a href="{}">report</a>', url)

    def get_urls(self):
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("<int:sequence_id>/report/", report, name="automations_sequence_report"),
            *super().get_urls(),
        ]

    def report_view(self, request: HttpRequest, sequence_id: int) -> HttpResponse:
        """Each step of each version in use: entered, waiting, sent, opened, clicked, left;
        and adding subscribers by hand."""
        sequence = get_object_or_404(self.get_queryset(request), pk=sequence_id)
        if not self.has_view_permission(request, sequence):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_run_permission(request):
                raise PermissionDenied
            self._add_by_hand(request, sequence)
            return redirect(request.get_full_path())
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sequence: {sequence.name}",
            "opts": self.model._meta,
            "sequence": sequence,
            "versions": reports.per_step(sequence),
            "can_run": self.has_run_permission(request),
            "imports": imports_for(request, sequence),
        }
        return TemplateResponse(request, "admin/automations/sequence/report.html", context)

    def _add_by_hand(self, request: HttpRequest, sequence: Sequence) -> None:
        if request.POST.get("import"):
            self._add_import(request, sequence)
            return
        wanted = {lookup_form(a) for a in request.POST.get("addresses", "").split() if a}
        # Only subscribers of lists the user may see; the others are named as unknown.
        known = access.scope(request.user, Subscriber.objects.all(), "subscriptions__mailing_list")
        found = dict(known.filter(email__in=wanted).values_list("email", "pk"))
        try:
            entered = sequence_enroll(sequence=sequence, subscriber_ids=list(found.values()))
        except SequenceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        unknown = sorted(wanted - set(found))
        note = f"; not subscribers: {', '.join(unknown)}" if unknown else ""
        already = len(found) - entered
        more = f"; {already} already in it (or blocklisted)" if already else ""
        self.message_user(
            request,
            _("%(entered)s entered %(sequence)s%(more)s%(note)s.")
            % {"entered": entered, "sequence": sequence.name, "more": more, "note": note},
        )

    def _add_import(self, request: HttpRequest, sequence: Sequence) -> None:
        job = imports_for(request, sequence).filter(pk=request.POST["import"]).first()
        try:
            if job is None:
                raise SequenceError("Choose one of the finished imports into its lists.")
            entered = sequence_enroll_import(sequence=sequence, job=job)
        except SequenceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(
            request,
            _("%(entered)s from %(job)s entered %(sequence)s.")
            % {"entered": entered, "job": job, "sequence": sequence.name},
        )


def imports_for(request: HttpRequest, sequence: Sequence):
    """Finished imports into the sequence's lists that the user may see, newest first."""
    done = SubscriberImport.objects.filter(
        status=SubscriberImport.Status.DONE,
        mode=SubscriberImport.Mode.SUBSCRIBE,
        mailing_list__in=sequence.lists.all(),
    )
    return access.scope(request.user, done, "mailing_list").order_by("-finished_at")[:20]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "sequence", "version", "position", "state", "due_at", "reason"]
    list_filter = ["state", "sequence"]
    search_fields = ["subscriber__email"]
    list_select_related = ["subscriber", "sequence"]
    readonly_fields = [f.name for f in Enrollment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
