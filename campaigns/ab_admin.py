"""A/B tests in the admin: the variants on one page, an action to start, and a report with
each variant's rate, its 95% interval and whether the lead is significant, where the winner
can be sent to the rest by hand."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from campaigns.ab import ABTest, Variant, verdict
from campaigns.ab_services import ab_choose, ab_rates, ab_start
from campaigns.models import Campaign
from campaigns.services import CampaignError
from subscribers import access
from subscribers.access import ScopedToLists


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 2
    max_num = 5
    fields = ["label", "subject", "from_email", "body"]


@admin.action(description=_("Start selected A/B tests"), permissions=["send"])
def start_test(modeladmin, request, queryset) -> None:
    for test in queryset:
        if refused := access.refused_lists(request.user, test.campaign.lists.all()):
            names = ", ".join(m.name for m in refused)
            modeladmin.message_user(
                request, _("You may not send to %(names)s.") % {"names": names}, messages.ERROR
            )
            continue
        try:
            ab_start(test=test)
            modeladmin.message_user(
                request, _("Started %(test)s.") % {"test": test}, messages.SUCCESS
            )
        except CampaignError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)


@admin.register(ABTest)
class ABTestAdmin(ScopedToLists, admin.ModelAdmin):
    list_path = "campaign__lists"
    every_list = True
    list_display = ["campaign", "status", "metric", "test_percent", "winner", "results"]
    list_filter = ["status"]
    inlines = [VariantInline]
    actions = [start_test]
    readonly_fields = ["status", "started_at", "decided_at", "winner"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "campaign":
            drafts = Campaign.objects.filter(kind="campaign", status="draft")
            kwargs["queryset"] = access.scope(request.user, drafts, "lists", every=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_send_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("campaigns.send_campaign")

    def has_change_permission(self, request, obj=None) -> bool:
        draft = obj is None or obj.status == ABTest.Status.DRAFT
        return draft and super().has_change_permission(request, obj)

    @admin.display(description=_("results"))
    def results(self, obj: ABTest) -> str:
        url = reverse("admin:campaigns_abtest_results", args=[obj.pk])
        return format_html('<a href="{}">results</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.results_view)
        name = "campaigns_abtest_results"
        return [path("<int:test_id>/results/", view, name=name), *super().get_urls()]

    def results_view(self, request: HttpRequest, test_id: int) -> HttpResponse:
        test = get_object_or_404(self.get_queryset(request), pk=test_id)
        if request.method == "POST":
            if not self.has_send_permission(request, test):
                raise PermissionDenied
            if refused := access.refused_lists(request.user, test.campaign.lists.all()):
                names = ", ".join(m.name for m in refused)
                self.message_user(
                    request, _("You may not send to %(names)s.") % {"names": names}, messages.ERROR
                )
                return redirect(request.get_full_path())
            try:
                ab_choose(test=test, label=request.POST.get("label", ""))
                self.message_user(request, _("The winner goes to the rest now."), messages.SUCCESS)
            except CampaignError as error:
                self.message_user(request, str(error), messages.ERROR)
            return redirect(request.get_full_path())
        rates = ab_rates(test)
        subjects = {
            v.label: v.campaign.subject if v.campaign else (v.subject or test.campaign.subject)
            for v in test.variants.select_related("campaign")
        }
        context = {
            **self.admin_site.each_context(request),
            "title": str(test),
            "opts": self.model._meta,
            "test": test,
            "rows": [
                {"rate": r, "interval": r.interval(), "subject": subjects.get(r.label, "")}
                for r in rates
            ],
            "verdict": verdict(rates),
            "can_choose": self.has_send_permission(request, test)
            and test.status == ABTest.Status.TESTING,
        }
        return TemplateResponse(request, "admin/campaigns/abtest/results.html", context)
