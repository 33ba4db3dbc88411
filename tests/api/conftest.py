from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from api.tokens import api_user_create


class ApiClient:
    """Requests as a listmonk client sends them: `Authorization: token user:secret`."""

    def __init__(self, client: Client, authorization: str) -> None:
        self.client = client
        self.authorization = authorization

    def call(self, method: str, path: str, body: Any = None, **params: Any):
        headers = {"HTTP_AUTHORIZATION": self.authorization} if self.authorization else {}
        if method in ("get", "delete") and body is None:
            query = f"?{urlencode(params, doseq=True)}" if params else ""
            return getattr(self.client, method)(f"/api{path}{query}", **headers)
        return getattr(self.client, method)(
            f"/api{path}", json.dumps(body), content_type="application/json", **headers
        )

    def get(self, path: str, **params: Any):
        return self.call("get", path, **params)

    def post(self, path: str, body: Any):
        return self.call("post", path, body)

    def put(self, path: str, body: Any):
        return self.call("put", path, body)

    def delete(self, path: str, **params: Any):
        return self.call("delete", path, **params)


def token_header(name: str, secret: str) -> str:
    return f"token {name}:{secret}"


def basic_header(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


@pytest.fixture
def make_api_client(client, roles):
    def make(name: str = "app", role: str = "Admin", lists=()) -> ApiClient:
        _, secret = api_user_create(name=name, role=role, list_ids=[m.pk for m in lists])
        return ApiClient(Client(), token_header(name, secret))

    return make


@pytest.fixture
def api_client(make_api_client) -> ApiClient:
    return make_api_client()
