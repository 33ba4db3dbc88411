"""What a recipient's signed links cost: the template context of one message (its ids
signed, and its five links built), per recipient, in this process.

    python -m bench.links [--recipients 200000] [--repeat 5]

Needs no servers. Prints the best of the repeats in microseconds per recipient; the links
are the only part of the context that is computed per recipient.
"""

from __future__ import annotations

import argparse
import time

from bench import offline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    offline.setup("links")  # the links need no server
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
