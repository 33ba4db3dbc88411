"""python -m bench run [--scenarios 1,...,9] [--runs 3] — see README.md, "Performance".

Starts its own PostgreSQL, Redis and Postfix smtp-sink (under .state/bench), runs the
scenarios, and writes bench/results/latest.md (a Markdown table) and latest.json (every figure);
scenario 10 alone writes ten-million-latest.md and .json, leaving the others' figures be.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench import scenarios
from bench.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"


def summary(runs: list[dict]) -> dict:
    return {"runs": runs, **scenarios.median_report(runs)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8,9")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--senders", type=int, default=2, help="sender worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes per sender")
    parser.add_argument("--rate-seconds", type=float, default=30)
    parser.add_argument("--scale", default="10000,100000,1000000")
    parser.add_argument(
        "--subscribers",
        type=int,
        default=10_000_000,
        help="scenario 10 (asked for by name only: about an hour and 20 GB at 10 million)",
    )
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="scenario 10: only the lookups and admin pages, on the data of its last run",
    )
    parser.add_argument(
        "--fold",
        action="store_true",
        help="scenario 10 with --pages-only: fold the finished campaigns' ledgers first",
    )
    parser.add_argument(
        "--send",
        action="store_true",
        help="scenario 10 with --pages-only: send another campaign to everyone for a minute",
    )
    parser.add_argument(
        "--merge", action="store_true", help="add to the figures in results/latest.json"
    )
    args = parser.parse_args()
    wanted = {int(s) for s in args.scenarios.split(",")}
    slots = args.senders * args.concurrency
    results: dict = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "settings": vars(args),
    }
    if args.merge and (RESULTS / "latest.json").exists():
        earlier = json.loads((RESULTS / "latest.json").read_text())
        results = {**earlier, **{k: v for k, v in results.items() if k != "settings"}}
    stack = Stack()

    def record(name: str, value: dict) -> None:
        results[name] = value
        print(name, json.dumps(value.get("runs", value)), flush=True)
        # after every scenario, so a later failure loses nothing
        save(results, "ten-million-latest" if wanted == {10} else "latest")

    try:
        stack.start_servers()
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.start_sink()
        if 1 in wanted:
            record(
                "throughput",
                summary(
                    [
                        scenarios.throughput(stack, args.recipients, args.senders, args.concurrency)
                        for _ in range(args.runs)
                    ]
                ),
            )
        if 2 in wanted:
            record(
                "raw",
                summary(
                    [
                        scenarios.raw_baseline(
                            stack, args.recipients, args.senders, args.concurrency
                        )
                        for _ in range(args.runs)
                    ]
                ),
            )
        if 3 in wanted:
            for mode in ("celery", "processes"):
                record(
                    f"peer_{mode}",
                    summary(
                        [
                            scenarios.peer(stack, args.recipients, slots, mode)
                            for _ in range(args.runs)
                        ]
                    ),
                )
        if 4 in wanted:
            cases = [
                (50, "global"),
                (500, "global"),
                (2000, "global"),
                (100, "campaign"),
                (1000, "campaign"),
            ]
            for limit, scope in cases:
                record(
                    f"rate_{scope}_{limit}",
                    summary(
                        [
                            scenarios.rate_accuracy(stack, limit, scope, args.rate_seconds)
                            for _ in range(args.runs)
                        ]
                    ),
                )
        if 5 in wanted:
            for weights in ([1, 1, 1, 1], [4, 2, 1, 1]):
                record(
                    "fairness_" + "_".join(map(str, weights)),
                    summary([scenarios.fairness(stack, weights, 20_000) for _ in range(args.runs)]),
                )
        if 6 in wanted:
            sizes = [int(s) for s in args.scale.split(",")]
            record("scale", summary([scenarios.scale(stack, sizes) for _ in range(args.runs)]))
        if 7 in wanted:
            record("control", summary([scenarios.control_latency(stack) for _ in range(args.runs)]))
        if 9 in wanted:
            record("tracking", summary([scenarios.tracking(stack) for _ in range(args.runs)]))
        if 8 in wanted:
            count = max(int(s) for s in args.scale.split(","))
            record(
                "subscriber_files",
                summary([scenarios.subscriber_files(stack, count) for _ in range(args.runs)]),
            )
        if 10 in wanted and args.pages_only:
            record(
                "ten_million_pages", scenarios.pages_again(stack, fold=args.fold, send=args.send)
            )
        elif 10 in wanted:
            record("ten_million", scenarios.ten_million(stack, args.subscribers))
    finally:
        stack.shutdown()
    print(report(results))
    return 0


def save(results: dict, name: str = "latest") -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(report(results))


def med(results: dict, name: str, key: str):
    entry = results.get(name)
    if not entry or key not in entry:
        return None
    return entry[key]["median"]


def span(results: dict, name: str, key: str, digits: int = 1) -> str:
    entry = results.get(name)
    if not entry or key not in entry:
        return "–"
    e = entry[key]
    return f"{e['median']:.{digits}f} ({e['min']:.{digits}f}–{e['max']:.{digits}f})"


def report(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}; commit {results['commit']}, {results['date']}.",
        "Medians of the runs, (min–max) after them.",
        "",
        "| scenario | figure | result | target |",
        "| --- | --- | --- | --- |",
    ]
    ours = med(results, "throughput", "messages_per_second")
    raw = med(results, "raw", "messages_per_second")
    if ours:
        lines += [
            f"| 1 throughput, end to end | messages/s | {span(results, 'throughput', 'messages_per_second')} | |",
            f"| | CPU s per 1,000 messages (workers, PostgreSQL, Redis) | {span(results, 'throughput', 'cpu_seconds_per_1000', 3)} | |",
            f"| | peak RSS per worker process, MB | {span(results, 'throughput', 'peak_rss_mb_per_worker_process')} | |",
        ]
    if raw:
        lines.append(
            f"| 2 raw smtplib baseline | messages/s | {span(results, 'raw', 'messages_per_second')} | |"
        )
    if ours and raw:
        lines.append(f"| | ours ÷ raw | {ours / raw:.2f} | ≥ 0.50 |")
    for mode in ("celery", "processes"):
        name = f"peer_{mode}"
        peer = med(results, name, "messages_per_second")
        if peer:
            delivery = med(results, name, "delivery_messages_per_second")
            lines += [
                f"| 3 django-post-office ({mode}) | messages/s end to end | {span(results, name, 'messages_per_second')} | |",
                f"| | delivery alone, messages/s | {span(results, name, 'delivery_messages_per_second')} | |",
            ]
            if ours:
                lines += [
                    f"| | ours ÷ peer, end to end | {ours / peer:.1f}× | ≥ 4× |",
                    f"| | ours ÷ peer, delivery alone | {ours / delivery:.1f}× | |",
                ]
    for name in results:
        if name.startswith("rate_"):
            _, scope, limit = name.split("_")
            lines += [
                f"| 4 {scope} limit {limit}/s | measured ÷ limit over {results['settings']['rate_seconds']:.0f} s | {span(results, name, 'ratio', 4)} | 1 ± 0.01 |",
                f"| | largest 1-s burst ÷ limit | {span(results, name, 'burst_ratio', 3)} | ≤ one second's worth |",
            ]
    for name in ("fairness_1_1_1_1", "fairness_4_2_1_1"):
        if name in results:
            weights = name.split("_", 1)[1].replace("_", ":")
            lines += [
                f"| 5 fairness {weights} | Jain's index, median of the per-second samples | {span(results, name, 'jain_median', 4)} | ≥ 0.99 |",
                f"| | lowest per-second sample (always the first second) | {span(results, name, 'jain_min', 4)} | |",
            ]
    if "scale" in results:
        sizes = [int(s) for s in results["settings"]["scale"].split(",")]
        lines.append(
            f"| 6 import {max(sizes):,} subscribers | seconds | {span(results, 'scale', 'import_seconds')} | ≤ 60 |"
        )
        for size in sizes:
            lines.append(
                f"| 6 snapshot {size:,} | seconds | {span(results, 'scale', f'snapshot_seconds_{size}', 2)} | {'≤ 5' if size == max(sizes) else ''} |"
            )
        rss = [med(results, "scale", f"worker_rss_mb_{size}") for size in sizes]
        lines.append(
            f"| 6 worker RSS {' / '.join(f'{s:,}' for s in sizes)} | MB | {' / '.join(f'{r:.0f}' for r in rss if r)} | flat (±10%) |"
        )
    if "control" in results:
        lines += [
            f"| 7 pause → last message | seconds | {span(results, 'control', 'pause_to_last_sent_seconds', 2)} | ≤ 1 |",
            f"| 7 resume → first message | seconds | {span(results, 'control', 'resume_to_first_sent_seconds', 2)} | |",
        ]
    if "subscriber_files" in results:
        n = int(med(results, "subscriber_files", "subscribers") or 0)
        lines += [
            f"| 8 import {n:,} subscribers (CSV, subscribe) | seconds | {span(results, 'subscriber_files', 'import_seconds')} | ≤ 60 |",
            f"| 8 export {n:,} subscribers (streaming CSV) | seconds | {span(results, 'subscriber_files', 'export_seconds')} | |",
            f"| | peak RSS of the exporting process, MB | {span(results, 'subscriber_files', 'export_peak_rss_mb')} | constant |",
            f"| 8 re-import of the export (update) | seconds | {span(results, 'subscriber_files', 'update_import_seconds')} | |",
        ]
    if "tracking" in results:
        lines += [
            f"| 9 open and click requests (gunicorn, 4 workers) | requests/s | {span(results, 'tracking', 'requests_per_second')} | |",
            f"| | median / p99 latency, ms | {span(results, 'tracking', 'latency_median_ms', 2)} / {span(results, 'tracking', 'latency_p99_ms', 2)} | |",
            f"| | batched write to PostgreSQL, events/s | {span(results, 'tracking', 'flush_events_per_second')} | |",
        ]
    if "ten_million" in results:
        lines += ten_million_rows(results["ten_million"])
    if "ten_million_pages" in results:
        again = results["ten_million_pages"]
        if again.get("fold"):
            lines += fold_rows(again["fold"])
        if sent := again.get("send"):
            lines += [
                f"| 10, pages again: another campaign to everyone | start s; messages/s; peak worker RSS MB | {sent['start_another_seconds']}; {sent['another_messages_per_second']}; {sent['worker_rss_mb']} | ≤ 100 MB |"
            ]
        for name, figure in {**again["lookups"], **again["admin"]}.items():
            lines.append(
                f"| 10, pages again: {name.replace('_', ' ')} | p50 / p95 ms | {figure['p50_ms']} / {figure['p95_ms']} | |"
            )
    return "\n".join(lines) + "\n"


def fold_rows(fold: dict) -> list[str]:
    folded, hot = fold["folded"], fold["hot_after"]
    return [
        f"| 10 fold a finished campaign's ledger | seconds each | {', '.join(map(str, fold['fold_seconds']))} | |",
        f"| 10 ledger bytes per row, finished and folded ({folded['rows']:,} rows in {folded['blocks']:,} blocks) | blocks, compressed arrays and indexes | {folded['bytes_per_row']} | ≤ 60 |",
        f"| 10 hot ledger after folding ({hot['rows']:,} rows left) | table and indexes, GB | {(hot['table_bytes'] + hot['index_bytes']) / 1e9:.1f} | |",
    ]


def ten_million_rows(t: dict) -> list[str]:
    n = f"{t['subscribers']:,}"
    finished, sending = t["ledger_finished"], t["ledger_while_sending"]
    rows = [
        f"| 10 import {n} subscribers (5 lists, 5 attributes) | seconds | {t['import_seconds']:.0f} | ≤ 480 |",
        f"| 10 snapshot of a {n}-recipient campaign | seconds, median (max) of 5 | {t['snapshot_seconds']['median']} ({t['snapshot_seconds']['max']}) | ≤ 45 |",
        f"| 10 ledger bytes per row while sending (all pending) | tables and indexes | {sending['bytes_per_row']} | |",
        f"| 10 ledger bytes per row, finished ({finished['rows']:,} rows) | tables and indexes | {finished['bytes_per_row']} | |",
        *fold_rows(t["fold"]),
    ]
    for name, figure in t["lookups"].items():
        rows.append(
            f"| 10 bounce lookup {name.replace('_', ' ')} | p50 / p95 ms | {figure['p50_ms']} / {figure['p95_ms']} | < 5 |"
        )
    for name, figure in t["lookups_folded"].items():
        rows.append(
            f"| 10 bounce lookup {name.replace('_', ' ')}, folded | p50 / p95 ms | {figure['p50_ms']} / {figure['p95_ms']} | < 5 |"
        )
    for name, figure in t["admin"].items():
        rows.append(
            f"| 10 {name.replace('_', ' ')} (HTTP {figure['status']}) | p50 / p95 ms | {figure['p50_ms']} / {figure['p95_ms']} | p95 ≤ 300 |"
        )
    rows += [
        f"| 10 sixth campaign, sending | messages/s | {t['sixth_messages_per_second']} | |",
        f"| | peak worker RSS, MB | {t['worker_rss_mb']} | ≤ 100 |",
        f"| 10 disk | database, GB / CSV files, GB | {t['database_bytes'] / 1e9:.1f} / {t['files_bytes'] / 1e9:.1f} | |",
    ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
