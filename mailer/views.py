"""The status page (admin, staff only), its JSON, the SMTP check button and /metrics."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from email_validator import EmailNotValidError

from mailer import metrics
from mailer.bounces import bounce_record
from mailer.models import SmtpServer
from mailer.smtp import ServerConfig, check_server
from mailer.status import engine_status
from settings.redis import get_redis

# The page fetches fresh data this often (it stays a plain page without JavaScript).
REFRESH_SECONDS = 3


def _bearer_ok(request: HttpRequest, token: str) -> bool:
    """The request carries `Authorization: Bearer <token>` (never true for an empty token)."""
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


def status_page(request: HttpRequest) -> HttpResponse:
    """What every campaign is doing and what holds it back; refreshes itself."""
    context = {
        **admin.site.each_context(request),
        "title": _("Sending status"),
        "status": engine_status(request.user),
        "refresh_seconds": REFRESH_SECONDS,
    }
    template = "admin/mailer/status_body.html" if "partial" in request.GET else None
    return TemplateResponse(request, template or "admin/mailer/status.html", context)


@never_cache
def status_json(request: HttpRequest) -> JsonResponse:
    """The status page's data, for staff sessions or `Authorization: Bearer METRICS_TOKEN`."""
    if not (_staff(request) or _bearer_ok(request, settings.METRICS_TOKEN)):
        return JsonResponse(
            {
                "error": "Log in to the admin as staff, or send the header "
                "'Authorization: Bearer <METRICS_TOKEN>' (set METRICS_TOKEN in the environment)."
            },
            status=401,
        )
    return JsonResponse(engine_status(request.user if _staff(request) else None))


@require_POST
def smtp_check(request: HttpRequest, server_key: str) -> HttpResponse:
    """The status page's "check connection" button: the steps of `check_smtp`, as messages."""
    # Checking logs in with the server's password: only for those who may change servers.
    if not request.user.has_perm("mailer.change_smtpserver"):
        raise PermissionDenied
    if server_key == "default":
        config = ServerConfig.default()
    else:
        pk = server_key.removeprefix("server-")
        server = SmtpServer.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
        if server is None:
            messages.error(request, f"There is no SMTP server {server_key!r} (any more).")
            return redirect("mailer-status")
        config = ServerConfig.from_model(server)
    steps = check_server(config)
    level = messages.SUCCESS if all(s.ok for s in steps) else messages.ERROR
    summary = "; ".join(f"{'ok' if s.ok else 'FAILED'}: {s.text}" for s in steps)
    messages.add_message(request, level, f"{config.name} ({config.host}:{config.port}): {summary}")
    return redirect("mailer-status")


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for `Authorization: Bearer METRICS_TOKEN` or a staff session."""
    if not (_staff(request) or _bearer_ok(request, settings.METRICS_TOKEN)):
        response = HttpResponse(
            "Send 'Authorization: Bearer <METRICS_TOKEN>' (set METRICS_TOKEN in the environment "
            "and in Prometheus's scrape config), or log in to the admin as staff.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


@csrf_exempt  # called by other systems, authenticated by the bearer token
@require_POST
def bounce_webhook(request: HttpRequest) -> JsonResponse:
    """Generic bounce endpoint: {"email", "type": hard|soft|complaint, "description",
    "campaign_id", "at"} or a list of them, with `Authorization: Bearer BOUNCE_WEBHOOK_TOKEN`.
    Good items are recorded even when others are refused; each refusal says why."""
    if not _bearer_ok(request, settings.BOUNCE_WEBHOOK_TOKEN):
        return JsonResponse(
            {
                "error": "Send 'Authorization: Bearer <BOUNCE_WEBHOOK_TOKEN>' (set in the "
                "environment; the endpoint is off while it is empty)."
            },
            status=401,
        )
    try:
        payload = json.loads(request.body)
    except ValueError as error:
        return JsonResponse({"error": f"The body is not JSON: {error}"}, status=400)
    items = payload if isinstance(payload, list) else [payload]
    recorded, refused = 0, []
    for n, item in enumerate(items):
        problem = _bounce_problem(item)
        if problem:
            refused.append({"index": n, "error": problem})
            continue
        at = parse_datetime(item["at"]) if item.get("at") else None
        try:
            bounce_record(
                email=item["email"],
                kind=item["type"],
                source="api",
                description=str(item.get("description", "")),
                campaign_id=item.get("campaign_id"),
                at=at,
            )
        except EmailNotValidError as error:
            refused.append({"index": n, "error": f"'email' is not a valid address: {error}"})
            continue
        recorded += 1
    status = 200 if not refused else (207 if recorded else 400)
    return JsonResponse({"recorded": recorded, "refused": refused}, status=status)


def _bounce_problem(item: object) -> str:
    if not isinstance(item, dict):
        return "Each item must be an object with 'email' and 'type'."
    if not isinstance(item.get("email"), str):
        return "'email' is missing."
    if item.get("type") not in ("hard", "soft", "complaint"):
        return "'type' must be 'hard', 'soft' or 'complaint'."
    campaign = item.get("campaign_id")
    if campaign is not None and not isinstance(campaign, int):
        return "'campaign_id' must be a number."
    if item.get("at") and parse_datetime(str(item["at"])) is None:
        return "'at' must be an ISO 8601 date and time, e.g. 2026-11-29T10:00:00Z."
    return ""


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and compose: the app answers and reaches PostgreSQL and Redis."""
    problems = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any failure means unhealthy; the text says which
        problems.append(f"database: {error}")
    try:
        get_redis().ping()
    except Exception as error:
        problems.append(f"redis: {error}")
    if problems:
        return HttpResponse("\n".join(problems) + "\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
