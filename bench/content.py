"""The benchmark's message: a personalised campaign of about 5 KB (HTML and text)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

PARAGRAPH = (
    '<p style="font-size:15px;line-height:1.5;color:#333">Our autumn collection has arrived '
    "in {{ subscriber.attributes.city }}, {{ subscriber.name }}: warm knits, waxed jackets and "
    "boots made to last. Members get early access this week, free returns and a repair "
    "service for everything they buy from us, for as long as they own it.</p>\n"
)
SUBJECT = "{{ subscriber.name }}, your autumn preview"
BODY = (
    '<h1 style="font-family:Georgia,serif">Hello {{ subscriber.name }}!</h1>\n'
    + PARAGRAPH * 5
    + '<p><a href="https://shop.example/autumn?city={{ subscriber.attributes.city }}">'
    "See the collection</a></p>\n"
)
LAYOUT = (
    '<!doctype html><html><body style="margin:0;background:#f4f4f7">\n'
    '<table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">\n'
    '<table width="600" style="background:#fff;padding:24px"><tr><td>\n'
    "{{ content }}\n"
    '<p style="color:#888;font-size:12px">You receive this because you subscribed.</p>\n'
    "</td></tr></table></td></tr></table></body></html>\n"
)
CITIES = ["Lyon", "Lagos", "Oslo", "Porto", "Hanoi", "Turin", "Kraków", "Montréal"]


def write_subscribers(path: Path, count: int, prefix: str = "r") -> None:
    rng = random.Random(count)  # noqa: S311 (benchmark data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city"])
        for n in range(count):
            writer.writerow(
                [f"{prefix}{n}@bench{n % 50}.example", f"Reader {n}", rng.choice(CITIES)]
            )


def rendered_example() -> tuple[str, str, str]:
    """Subject, HTML and text as one recipient gets them (for the baseline and the peer)."""
    from django.template import Context, Engine, Template

    engine = Engine(autoescape=True)
    context = Context({"subscriber": {"name": "Reader 1", "attributes": {"city": "Oslo"}}})
    html = Template(LAYOUT.replace("{{ content }}", BODY), engine=engine).render(context)
    subject = Template(SUBJECT, engine=engine).render(context)
    from django.utils.html import strip_tags

    return subject, html, strip_tags(html)
