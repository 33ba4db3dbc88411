"""The OpenAPI description and the interactive docs, generated from the code and served
from the project's own static files."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_openapi_description_names_every_route(client):
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/health", "/api/lists", "/api/lists/{list_id}", "/api/subscribers",
            "/api/subscribers/{subscriber_id}", "/api/subscribers/lists",
            "/api/subscribers/{subscriber_id}/export", "/api/tx",
            "/api/tx/{message_id}"} <= set(spec["paths"])  # fmt: skip
    # The transactional request's fields are described, though it also takes multipart.
    body = spec["paths"]["/api/tx"]["post"]["requestBody"]["content"]["application/json"]
    assert {"template_id", "subscriber_emails", "data"} <= set(body["schema"]["properties"])


def test_the_docs_load_their_scripts_from_this_site(admin_client):
    page = admin_client.get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_an_unknown_api_path_answers_in_json(api_client):
    response = api_client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"message": "No API endpoint GET /api/nowhere; see /api/docs."}


def test_a_body_that_is_not_json_is_refused_in_json(api_client):
    response = api_client.client.post(
        "/api/lists",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=api_client.authorization,
    )
    assert response.status_code == 400 and "message" in response.json()
