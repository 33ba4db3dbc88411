"""Where a sender's time goes: one batch loop under cProfile, in this process.

    python -m bench.profile [--recipients 20000] [--sort tottime]

Starts the benchmark's PostgreSQL, Redis and smtp-sink, writes a campaign's ledger, then
sends it from this process with one batch after another and prints the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
import uuid

from bench.scenarios import common as scenarios
from bench.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--lines", type=int, default=35)
    args = parser.parse_args()
    stack = Stack()
    try:
        stack.start_servers()
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.start_sink()
        scenarios.reset(stack)
        scenarios.performance(stack)
        scenarios.import_audience(stack, args.recipients, "bench", "t")
        campaign = scenarios.create_campaign(stack, "profile", ["bench"])
        os.environ.update(stack.env)
        import django

        django.setup()
        from campaigns.models import Campaign
        from mailer import dispatcher
        from mailer.batch import run_batch
        from mailer.models import PerformanceSettings

        Campaign.objects.filter(pk=campaign).update(status="scheduled")
        dispatcher.campaign_begin(campaign)
        dispatcher.share_limits(PerformanceSettings.load())
        profile = cProfile.Profile()
        started = time.monotonic()
        sent = 0
        profile.enable()
        while sent < args.recipients:
            summary = run_batch(batch_id=str(uuid.uuid4()))
            if not summary["sent"]:
                break
            sent += summary["sent"]
        profile.disable()
        elapsed = time.monotonic() - started
        print(f"{sent} messages in {elapsed:.1f} s: {sent / elapsed:.0f}/s from one process")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.lines)
    finally:
        stack.shutdown()


if __name__ == "__main__":
    main()
