"""python -m bench run [--scenarios 1,2,...] [--runs 3] — see README.md, "Performance"."""

from __future__ import annotations

import argparse
import sys

from bench import scenarios
from bench.stack import Stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--scenarios", default="1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    wanted = {int(s) for s in args.scenarios.split(",")}
    stack = Stack()
    results: dict = {}
    try:
        stack.start_servers()
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.start_sink()
        if 1 in wanted:
            runs = [
                scenarios.throughput(stack, args.recipients, args.senders, args.concurrency)
                for _ in range(args.runs)
            ]
            results["throughput"] = {"runs": runs, **scenarios.median_report(runs)}
            print("throughput", runs, flush=True)
        if 2 in wanted:
            runs = [
                scenarios.raw_baseline(stack, args.recipients, args.senders, args.concurrency)
                for _ in range(args.runs)
            ]
            results["raw"] = {"runs": runs, **scenarios.median_report(runs)}
            print("raw", runs, flush=True)
    finally:
        stack.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
