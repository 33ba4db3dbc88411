"""What a recipient's signed links cost: the template context of one message (its ids
signed, and its five links built), per recipient, in this process.

    python -m bench.links [--recipients 200000] [--repeat 5]

Needs no servers. Prints the best of the repeats in microseconds per recipient; the links
are the only part of the context that is computed per recipient.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-links-" + "k" * 48)
    # Read by the settings, never connected to: the links need no server.
    os.environ.setdefault("DATABASE_URL", "postgres://bench@127.0.0.1:1/bench")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    os.environ.setdefault("SITE_URL", "https://news.example")
    import django

    django.setup()
    from campaigns.models import Campaign
    from mailer.compose import CampaignComposer

    composer = CampaignComposer(Campaign(name="bench"), None)  # type: ignore[arg-type]
    composer.campaign.pk = 4242
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        for subscriber_id in range(1, args.recipients + 1):
            composer.context(subscriber_id=subscriber_id, email="", name="", attributes={})
        best = min(best, time.perf_counter() - started)
    print(f"{best / args.recipients * 1e6:.2f} µs per recipient (best of {args.repeat})")


if __name__ == "__main__":
    main()
