from django.contrib import admin
from django.urls import path

from mailer import views

urlpatterns = [
    path("admin/status/", admin.site.admin_view(views.status_page), name="mailer-status"),
    path("admin/status.json", views.status_json, name="mailer-status-json"),
    path(
        "admin/status/smtp/<str:server_key>/check/",
        admin.site.admin_view(views.smtp_check),
        name="mailer-smtp-check",
    ),
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
