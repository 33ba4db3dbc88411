"""The "view in browser" page shows a campaign's HTML on the project's own origin, where an
admin may be logged in: whatever a campaign's editor put in it must not run there."""

from __future__ import annotations

import pytest

from subscribers import links
from tests.factories import CampaignFactory, SubscriberFactory, TemplateFactory

pytestmark = pytest.mark.django_db

ATTACKS = [
    "<script>fetch('/admin/auth/user/add/')</script>",
    '<img src="x" onerror="alert(document.cookie)">',
    '<a href="javascript:alert(1)">Open</a>',
    '<iframe src="/admin/"></iframe>',
    "<form action='/admin/logout/' method='post'><button>Win</button></form>",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("where", ["body", "layout"])
def test_scripts_in_a_campaign_never_run_on_the_view_page(client, attack, where):
    layout = "<html><body>{{ content }}</body></html>"
    body = "<p>Hello</p>"
    if where == "body":
        body += attack
    else:
        layout = layout.replace("</body>", attack + "</body>")
    campaign = CampaignFactory(body=body, template=TemplateFactory(html=layout))
    subscriber = SubscriberFactory()

    response = client.get(f"/v/{links.token(links.Purpose.VIEW, subscriber.pk, campaign.pk)}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Hello" in page
    for dangerous in ("<script", "onerror", "javascript:", "<iframe", "<form"):
        assert dangerous not in page.lower()
    policy = response["Content-Security-Policy"]
    assert "sandbox" in policy and "script-src 'none'" in policy
