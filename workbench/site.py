"""The admin site: the dashboard as its home page, the analytics pages, and the models in the
sections a marketing team thinks in (Audience, Content and sending, Automations, Delivery,
Settings, People and access) rather than by the app that holds them. Installed as Django's
default admin site (workbench.apps.WorkbenchAdminConfig), so `admin.site` is this one."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from mailer import charts
from workbench import dashboard, views

# section -> the models in it, in order, as "app_label.model_name"
SECTIONS: list[tuple[Any, list[str]]] = [
    (
        _("Audience"),
        [
            "subscribers.subscriber",
            "subscribers.mailinglist",
            "subscribers.subscriberimport",
        ],
    ),
    (
        _("Campaigns"),
        [
            "campaigns.campaign",
            "campaigns.template",
            "campaigns.abtest",
            "campaigns.media",
        ],
    ),
    (_("Automations"), ["automations.sequence", "automations.enrollment"]),
    (
        _("Delivery"),
        [
            "mailer.delivery",
            "mailer.bounce",
            "mailer.mailboxreport",
            "mailer.txmessage",
        ],
    ),
    (
        _("Settings"),
        [
            "mailer.performancesettings",
            "mailer.bouncesettings",
            "mailer.smtpserver",
            "mailer.domainthrottle",
            "webhooks.webhook",
            "api.apiuser",
        ],
    ),
]
PEOPLE = _("People and access")


class WorkbenchSite(AdminSite):
    site_header = "Campaign mailer"
    site_title = "Campaign mailer"
    index_title = _("Dashboard")
    index_template = "workbench/dashboard.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        found = dashboard.context(request)
        growth = (found["dashboard"] or {}).get("growth")
        if growth is not None and request.GET.get("csv") == growth.id:
            return charts.as_csv(growth, "lists")
        return super().index(request, {**found, **(extra_context or {})})

    def get_urls(self) -> list:
        def page(view: Any) -> Any:
            return self.admin_view(lambda request: view(request, self.each_context(request)))

        return [
            path("analytics/campaigns/", page(views.campaigns_view), name="analytics-campaigns"),
            path("analytics/lists/", page(views.lists_view), name="analytics-lists"),
            *super().get_urls(),
        ]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps  # an app's own page lists its models as they are
        models = {
            f"{app['app_label']}.{model['object_name'].lower()}": (app, model)
            for app in apps
            for model in app["models"]
        }
        sections = []
        for name, keys in SECTIONS:
            found = [models.pop(key) for key in keys if key in models]
            if found:
                sections.append(_section(name, found))
        rest = list(models.values())  # users, groups, two-factor devices, audit, lockouts, …
        if rest:
            sections.append(_section(PEOPLE, rest))
        return sections

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        user = request.user
        context["analytics_links"] = [
            (label, reverse(f"admin:{name}"))
            for label, name, permission in (
                (_("Campaigns compared"), "analytics-campaigns", "campaigns.view_campaign"),
                (_("Lists over time"), "analytics-lists", "subscribers.view_mailinglist"),
            )
            if getattr(user, "is_active", False) and user.has_perm(permission)
        ]
        return context


def _section(name: Any, found: list[tuple[dict, dict]]) -> dict[str, Any]:
    first_app = found[0][0]
    return {
        "name": name,
        "app_label": first_app["app_label"],
        "app_url": first_app["app_url"],
        "has_module_perms": True,
        "models": [model for _, model in found],
    }
