from __future__ import annotations

import csv
import random
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from campaigns.models import Campaign, Template
from campaigns.services import campaign_start
from subscribers.models import MailingList

FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jonas"]
LAST = ["Martin", "Okafor", "Larsen", "Silva", "Nguyen", "Rossi", "Kowalski", "Dubois"]
CITIES = ["Lyon", "Lagos", "Oslo", "Porto", "Hanoi", "Turin", "Kraków", "Montréal"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example"]

LAYOUT = """<html><head><style>
  body { font-family: sans-serif; background: #f4f4f7; padding: 24px }
  .card { max-width: 560px; margin: auto; background: #fff; padding: 24px; border-radius: 8px }
  .foot { color: #888; font-size: 12px }
  a.button { background: #2563eb; color: #fff; padding: 8px 14px; text-decoration: none }
</style></head><body><div class="card">
{{ content }}
<p class="foot">You receive this because you subscribed to our news.
<a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Preferences</a>
· <a href="{{ view_url }}">View in a browser</a></p>
</div></body></html>"""

# name, subject, lists, body, messages/s: limits low enough that the demo visibly sends for a
# minute or two, each campaign at its own rate.
CAMPAIGNS = [
    (
        "Autumn newsletter",
        "Autumn news for {{ subscriber.name|default:'you' }}",
        ["Newsletter"],
        "<h1>Hello {{ subscriber.name|default:'there' }}!</h1>"
        "<p>Autumn has arrived in {{ subscriber.attributes.city|default:'your city' }}.</p>"
        '<p><a class="button" href="https://shop.example/autumn">See the autumn range</a></p>',
        25,
    ),
    (
        "Product launch",
        "Something new is here",
        ["Product updates"],
        "<h1>Meet the new thing</h1><p>Dear {{ subscriber.name }}, it ships today.</p>",
        20,
    ),
    (
        "Year in review",
        "Our year, and yours",
        ["Newsletter", "Product updates"],
        "<h1>Thank you, {{ subscriber.name }}</h1><p>Everyone on both lists gets this once.</p>",
        40,
    ),
]


def write_demo_csv(path: Path, count: int) -> None:
    rng = random.Random(7)  # noqa: S311 (demo data, not security)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city"])
        for n in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            address = f"{first.lower()}.{last.lower()}.{n}@{rng.choice(DOMAINS)}"
            address = address.replace("é", "e").replace("è", "e")
            writer.writerow([address, f"{first} {last}", rng.choice(CITIES)])


class Command(BaseCommand):
    help = (
        "Create demo lists (from a generated CSV, through import_subscribers), a template and "
        "three campaigns, and start them. Does nothing if the demo exists already."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--csv", type=Path, default=Path("demo-subscribers.csv"))
        parser.add_argument("--subscribers", type=int, default=3000)
        parser.add_argument("--no-start", action="store_true", help="Leave campaigns as drafts.")

    def handle(self, *args, csv: Path, subscribers: int, no_start: bool, **options) -> None:
        if Campaign.objects.filter(name=CAMPAIGNS[0][0]).exists():
            self.stdout.write("The demo exists already; nothing to do.")
            return
        write_demo_csv(csv, subscribers)
        # Two overlapping lists: the first two thirds, and the last two thirds of the file.
        lines = csv.read_text().splitlines()
        header, rows = lines[0], lines[1:]
        third = len(rows) // 3
        parts = {"Newsletter": rows[: 2 * third], "Product updates": rows[third:]}
        for list_name, part in parts.items():
            part_file = csv.with_name(f"{csv.stem}-{list_name.lower().replace(' ', '-')}.csv")
            part_file.write_text("\n".join([header, *part]) + "\n")
            MailingList.objects.get_or_create(name=list_name, defaults={"is_public": True})
            call_command("import_subscribers", str(part_file), "--list", list_name)
        # A public double opt-in list, to try the subscribe form and its confirmation mail.
        MailingList.objects.get_or_create(
            name="Events",
            defaults={
                "is_public": True,
                "opt_in": MailingList.OptIn.DOUBLE,
                "description": "Invitations to our events, a few times a year.",
            },
        )
        template, _ = Template.objects.get_or_create(name="Demo layout", defaults={"html": LAYOUT})
        for name, subject, list_names, body, rate in CAMPAIGNS:
            campaign = Campaign.objects.create(
                name=name, subject=subject, body=body, template=template, rate_limit=rate
            )
            campaign.lists.set(MailingList.objects.filter(name__in=list_names))
            if not no_start:
                campaign = campaign_start(campaign=campaign)
            self.stdout.write(f"Demo campaign {campaign.pk} {name!r}: {campaign.status}")
