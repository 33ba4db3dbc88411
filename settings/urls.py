from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from api.urls import api
from api.urls import not_found as api_not_found
from campaigns import archive
from campaigns import views as campaign_views
from mailer import two_factor
from mailer import views as mailer_views
from subscribers import views as subscriber_views

# Every app's admin module, registered here where the pages are served (workbench.apps).
admin.autodiscover()

urlpatterns = [
    path("admin/status/", admin.site.admin_view(mailer_views.status_page), name="mailer-status"),
    path("admin/status.json", mailer_views.status_json, name="mailer-status-json"),
    path(
        "admin/status/smtp/<str:server_key>/check/",
        admin.site.admin_view(mailer_views.smtp_check),
        name="mailer-smtp-check",
    ),
    path("admin/two-factor/", admin.site.admin_view(two_factor.enrol), name="two-factor"),
    path("metrics", mailer_views.metrics_view, name="metrics"),
    path("api/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
    path("healthz", mailer_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The language switcher of the admin's header (Django's set_language view).
    path("i18n/", include("django.conf.urls.i18n")),
    # Public pages, reached from emails and embedded forms (signed links, no login).
    path("subscribe/<int:list_id>/", subscriber_views.subscribe, name="subscribe"),
    path("subscribe/challenge/", subscriber_views.subscribe_challenge, name="subscribe-challenge"),
    path("confirm/<str:token>/", subscriber_views.confirm, name="confirm"),
    path("u/<str:token>/", subscriber_views.unsubscribe, name="unsubscribe"),
    path(
        "u/<str:token>/preferences/",
        subscriber_views.send_preferences_link,
        name="send-preferences-link",
    ),
    path("p/<str:token>/", subscriber_views.preferences, name="preferences"),
    path("p/<str:token>/export/", subscriber_views.preferences_export, name="preferences-export"),
    path("p/<str:token>/erase/", subscriber_views.preferences_erase, name="preferences-erase"),
    path("v/<str:token>/", campaign_views.view_in_browser, name="view-in-browser"),
    # The public archive of campaigns marked so, with RSS and Atom feeds.
    path("archive/", archive.index, name="archive"),
    path("archive/feed/", archive.ArchiveFeed(), name="archive-feed"),
    path("archive/feed/atom/", archive.ArchiveAtomFeed(), name="archive-atom"),
    path("archive/list/<uuid:list_uuid>/", archive.index, name="archive-list"),
    path("archive/list/<uuid:list_uuid>/feed/", archive.ArchiveFeed(), name="archive-list-feed"),
    path(
        "archive/list/<uuid:list_uuid>/feed/atom/",
        archive.ArchiveAtomFeed(),
        name="archive-list-atom",
    ),
    path("archive/<slug:slug>/", archive.message, name="archive-message"),
    # The media library's files (a local folder; an S3 bucket serves its own).
    path("media/library/<str:name>", campaign_views.library_file, name="media-library-file"),
    path("o/<str:token>/", campaign_views.open_pixel, name="open"),
    path("c/<str:token>/<int:link_id>/", campaign_views.click, name="click"),
]

# Providers' bounce and complaint webhooks (django-anymail), once their secret is set:
# /webhooks/anymail/amazon_ses/tracking/, …/sendgrid/tracking/, …/postmark/tracking/,
# …/mailgun/tracking/ and the other providers anymail knows.
urlpatterns.append(path("webhooks/bounces/", mailer_views.bounce_webhook, name="bounces"))
if settings.ANYMAIL["WEBHOOK_SECRET"]:
    urlpatterns.append(path("webhooks/anymail/", include("anymail.urls")))
