"""The REST API at /api/, in listmonk's shapes (its clients work unchanged), with its
OpenAPI description at /api/openapi.json and interactive docs at /api/docs.

django-ninja rather than Django REST framework: the OpenAPI description comes from the
type hints of the functions themselves (pydantic schemas), the docs' scripts are served
from the project's own static files, and the envelope listmonk uses is plain data to return,
with no serializer and viewset layers to bend around it.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api import (
    auth,
    bounces,
    campaign_tools,
    campaigns,
    imports,
    lists,
    sequences,
    subscribers,
    templates,
    tx,
)


class LocalSwagger(Swagger):
    """Swagger UI from this site's static files (django-ninja picks them only when it is an
    installed app, which would load it and pydantic into every worker process)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {"swagger_settings": json.dumps(self.settings), "api": api, "add_csrf": False}
        return render(request, "api/swagger.html", context)


api = NinjaAPI(
    title="campaign-mailer",
    version="1",
    description="listmonk-compatible REST API. Authenticate with "
    "`Authorization: token USER:TOKEN` or HTTP basic auth (USER, TOKEN).",
    auth=auth.api_user,
    urls_namespace="api",
    docs=LocalSwagger(),
)
api.add_router("", lists.router)
api.add_router("", subscribers.router)
api.add_router("", campaigns.router)
api.add_router("", campaign_tools.router)
api.add_router("", templates.router)
api.add_router("", bounces.router)
api.add_router("", imports.router)
api.add_router("", tx.router)
api.add_router("", sequences.router)


@api.get("/health", auth=None, tags=["Miscellaneous"])
def health(request: HttpRequest) -> dict[str, Any]:
    return {"data": True}


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/: a JSON answer, as listmonk's clients expect."""
    return JsonResponse(
        {"message": f"No API endpoint {request.method} {request.path}; see /api/docs."},
        status=404,
    )


def message(request: HttpRequest, status: int, text: str, **headers: str) -> HttpResponse:
    response = api.create_response(request, {"message": text}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return message(request, error.status_code, str(error))


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return message(
        request,
        403,
        "Invalid API credentials: send `Authorization: token USER:TOKEN` (or basic auth) "
        "with an API user's token (manage.py create_api_user, or API users in the admin).",
    )


@api.exception_handler(auth.RateLimited)
def rate_limited(request: HttpRequest, error: auth.RateLimited) -> HttpResponse:
    return message(
        request,
        429,
        f"Too many requests for this API user; try again in {error.retry_after} s.",
        **{"Retry-After": str(error.retry_after)},
    )


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, error: ValidationError) -> HttpResponse:
    problems = []
    for item in error.errors:
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body",))
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return message(request, 400, "Invalid request: " + "; ".join(problems))
