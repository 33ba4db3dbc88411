"""Sequences at scale: a welcome series for 100,000 people imported at once beside a campaign
of 100,000, and what a step costs for a million.

    python -m bench.sequences [--subscribers 100000] [--rate 1000] [--scale 1000000]

Starts its own PostgreSQL, Redis and Postfix smtp-sink (as `./dev bench` does), the sink
appending every message it accepts to one file (`-D`): the recording sink that says who got
what. Then:

1. A list-triggered sequence of three messages (0 s, 10 s and 20 s after joining) of weight
   1, and a campaign of `--subscribers` of weight 1, under a global rate of `--rate`/s. The
   campaign starts; the same moment `--subscribers` new people are imported into the
   sequence's list with `import_subscribers` (the real import). Figures: each member's
   messages at the sink (each step exactly once?), the sequence's share of the messages
   while both had mail due (its weight says 50%), and the global rate over that time.
2. `--scale` subscribers entered into a manual sequence at once (one statement), then the
   engine's ticks moving all of them through a wait step and, separately, a send step (the
   ledger rows written, nothing sent: no senders run): seconds, and CPU seconds of the tick
   process and of PostgreSQL per 1,000 due steps.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from bench.scenarios.common import (
    campaign_row,
    create_campaign,
    db,
    import_audience,
    performance,
    reset,
)
from bench.stack import PORTS, STATE, Stack, cpu_seconds, server_processes, smtp_sink_binary
from devstack.processes import port_open, wait_for

DUMP_DIR = STATE / "sink-dump"
DUMP = DUMP_DIR / "messages.txt"

MAKE_SEQUENCE = """
from automations import services
from automations.models import Sequence, Step
from subscribers.models import MailingList
members, _ = MailingList.objects.get_or_create(name={list!r})
sequence = Sequence.objects.create(name={name!r}, trigger={trigger!r}, trigger_list=members,
                                   weight=1)
sequence.lists.set([members])
for position, (kind, value) in enumerate({steps!r}, start=1):
    step = Step(sequence=sequence, version=1, position=position, kind=kind)
    if kind == "wait":
        step.wait_seconds = value
    else:
        body = "<p>" + value + ", {{{{ subscriber.name }}}}</p>"
        step.campaign = services.step_message(sequence, position=position, subject=value,
                                              body=body)
    step.save()
services.sequence_activate(sequence=sequence)
print(sequence.pk, *[s.campaign_id for s in sequence.steps.filter(kind="send")])
"""


def start_recording_sink(stack: Stack) -> None:
    binary, extra_env = smtp_sink_binary()
    stack.stop("sink")
    DUMP_DIR.mkdir(parents=True, exist_ok=True)
    # The sink writes as nobody, beside the file too: a benchmark's scratch folder.
    os.chmod(DUMP_DIR, 0o777)  # noqa: S103
    DUMP.unlink(missing_ok=True)
    argv = [str(binary), "-u", "nobody", "-D", str(DUMP), f"127.0.0.1:{PORTS['sink']}", "1000"]
    stack.start("sink", argv, env={**os.environ, **extra_env})
    wait_for(lambda: port_open(PORTS["sink"]), timeout=10, what="smtp-sink")


def recorded() -> Counter:
    """(campaign id, recipient) of every message the sink accepted."""
    pairs: Counter = Counter()
    rcpt = campaign = None
    with DUMP.open("rb") as dump:
        for line in dump:
            if line.startswith(b"X-Rcpt-Args: <"):
                rcpt = line[14:].split(b">", 1)[0].decode()
            elif line.startswith(b"X-Campaign-ID: "):
                campaign = int(line[15:].strip())
                pairs[(campaign, rcpt)] += 1
    return pairs


def sent_per_second(stack: Stack, campaigns: list[int]) -> dict[int, int]:
    with db(stack) as conn:
        rows = conn.execute(
            "SELECT floor(extract(epoch FROM sent_at))::bigint, count(*) FROM mailer_delivery"
            " WHERE campaign_id = ANY(%s) AND status = 'sent' GROUP BY 1",
            [campaigns],
        ).fetchall()
    return dict(rows)


def welcome_beside_a_campaign(stack: Stack, subscribers: int, rate: int) -> dict:
    performance(stack, message_rate=rate)
    import_audience(stack, subscribers, "readers", "r")
    campaign = create_campaign(stack, "newsletter", ["readers"], weight=1)
    steps = [("send", "Welcome"), ("wait", 10), ("send", "Getting started")]
    steps += [("wait", 10), ("send", "Tips")]
    out = stack.manage(
        "shell",
        "-c",
        MAKE_SEQUENCE.format(list="members", name="welcome", trigger="list", steps=steps),
    )
    # (the shell first says what it imported)
    sequence, *messages = (int(x) for x in out.strip().splitlines()[-1].split())
    stack.manage("campaign", "start", str(campaign))
    started = time.time()
    imported = import_audience(stack, subscribers, "members", "m")
    wait_for(lambda: campaign_row(stack, campaign)[0] == "finished", timeout=3600, what="campaign")

    def sequence_sent() -> int:
        with db(stack) as conn:
            return conn.execute(
                "SELECT coalesce(sum(sent), 0) FROM campaigns_campaign WHERE id = ANY(%s)",
                [messages],
            ).fetchone()[0]

    wait_for(lambda: sequence_sent() >= 3 * subscribers, timeout=3600, what="the sequence")
    time.sleep(3)  # the sink's last writes
    finished = time.time()
    got = recorded()
    members = {f"m{n}@bench{n % 50}.example" for n in range(subscribers)}
    per_member = Counter((c, r) for (c, r), n in got.items() for _ in range(n) if c in messages)
    missing = sum(1 for c in messages for r in members if (c, r) not in per_member)
    repeated = sum(n - 1 for n in per_member.values() if n > 1)
    # While both sent: from the second both had sent in to the last second of the first done
    # (the edges, partly one alone, left out).
    theirs = sent_per_second(stack, [campaign])
    ours = sent_per_second(stack, messages)
    start = max(min(theirs), min(ours)) + 1
    end = min(max(theirs), max(ours))
    both = list(range(start, end))
    camp = sum(theirs.get(s, 0) for s in both)
    seq = sum(ours.get(s, 0) for s in both)
    return {
        "subscribers": subscribers,
        "import_seconds": round(imported, 1),
        "sequence_messages_at_sink": sum(per_member.values()),
        "missing_steps": missing,
        "repeated_steps": repeated,
        "campaign_at_sink": sum(n for (c, _), n in got.items() if c == campaign),
        "sequence_share_while_both_sent": round(seq / (seq + camp), 4),
        "rate_while_both_sent": round((seq + camp) / len(both), 1),
        "global_rate": rate,
        "seconds_both": len(both),
        "seconds_total": round(finished - started, 1),
        "sequence_id": sequence,
    }


STEP_COST = """
import resource, time
from automations import engine, entry, services
from automations.models import Enrollment, Sequence
from subscribers.models import Subscriber
sequence = Sequence.objects.get(name={name!r})
ids = list(Subscriber.objects.filter(email__startswith="s").values_list("pk", flat=True))
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
started, c0 = time.monotonic(), cpu()
entry.enroll(sequence, ids)
print("enter", time.monotonic() - started, cpu() - c0, flush=True)
started, c0 = time.monotonic(), cpu()
while engine.due_groups():
    engine.tick()
print("steps", time.monotonic() - started, cpu() - c0, flush=True)
"""


def step_cost(stack: Stack, scale: int, kind: str) -> dict:
    """Enter `scale` subscribers, then move them all through one step of `kind`."""
    steps = [("wait", 86400)] if kind == "wait" else [("send", "Hello"), ("wait", 86400)]
    name = f"cost-{kind}"
    stack.manage(
        "shell", "-c", MAKE_SEQUENCE.format(list="scale", name=name, trigger="manual", steps=steps)
    )
    servers = server_processes(stack)
    pg_before = cpu_seconds(servers)
    out = stack.manage("shell", "-c", STEP_COST.format(name=name))
    pg_after = cpu_seconds(servers)
    figures = {
        line.split()[0]: [float(x) for x in line.split()[1:]]
        for line in out.splitlines()
        if line.split() and line.split()[0] in ("enter", "steps")
    }
    enter, steps_ = figures["enter"], figures["steps"]
    return {
        "subscribers": scale,
        "enter_seconds": round(enter[0], 1),
        "step_seconds": round(steps_[0], 1),
        "tick_cpu_per_1000": round(1000 * steps_[1] / scale, 4),
        "postgres_cpu_per_1000_whole_run": round(1000 * (pg_after - pg_before) / scale, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip", default="", help="welcome,cost: parts not to run")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    stack = Stack()
    results: dict = {}
    try:
        stack.start_servers()
        stack.manage("migrate", "--no-input", "-v", "0")
        reset(stack)
        with db(stack) as conn:
            conn.execute("TRUNCATE automations_sequence RESTART IDENTITY CASCADE")
        start_recording_sink(stack)
        if "welcome" not in skip:
            stack.start_engine(args.senders, args.concurrency, split=True)
            results["welcome"] = welcome_beside_a_campaign(stack, args.subscribers, args.rate)
            print("welcome", json.dumps(results["welcome"]), flush=True)
            stack.stop_engine()
            start_recording_sink(stack)
        if "cost" not in skip:
            import_audience(stack, args.scale, "scale", "s")
            for kind in ("wait", "send"):
                results[f"step_{kind}"] = step_cost(stack, args.scale, kind)
                print(f"step_{kind}", json.dumps(results[f"step_{kind}"]), flush=True)
    finally:
        stack.shutdown()
    out = Path(__file__).resolve().parent / "results" / "sequences.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
