"""Every page carries a Content-Security-Policy that allows scripts from the site's own static
files only, and the headers `check --deploy` asks for (that a deployment as documented passes
`check --deploy` with no warning is tests/project/test_environment.py's)."""

from __future__ import annotations

import pytest

from tests.factories import CampaignFactory, MailingListFactory

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


def test_admin_pages_allow_only_the_sites_own_scripts(admin_client):
    campaign = CampaignFactory(lists=[MailingListFactory()])
    for url in (
        "/admin/",
        f"/admin/campaigns/campaign/{campaign.pk}/change/",
        f"/admin/campaigns/campaign/{campaign.pk}/report/",
        "/admin/status/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["script-src"] == "script-src 'self'", url
        assert "object-src 'none'" in directives.values()
        assert "frame-ancestors 'self'" in directives.values()
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"onclick=" not in response.content and b"<script>" not in response.content, url


def test_public_pages_carry_the_policy_and_the_view_page_keeps_its_sandbox(client):
    mailing_list = MailingListFactory(is_public=True)
    page = client.get(f"/subscribe/{mailing_list.pk}/")
    assert policy(page)["script-src"] == "script-src 'self'"
    assert page["Referrer-Policy"] == "same-origin"
