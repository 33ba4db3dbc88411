"""`python -m settings.worker -Q send -c 4 -n sender@%h`: Celery's own worker command, with
every option of `celery -A settings worker`, started without the rest of Celery's command line.

The `celery` program imports every command it could run before it reads its arguments: the
`amqp` shell with prompt-toolkit, and the plugins installed beside it, Flower with Tornado and
the Prometheus client among them. A worker would carry them in its main process and in each
pool process forked from it: 14 MB in every one, measured on a sender (95 -> 81 MB per pool
process). Beat and Flower keep the `celery` program.
"""

from __future__ import annotations

import sys

from celery.bin.base import CLIContext
from celery.bin.worker import worker

from settings.celery import app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    context = CLIContext(app=app, no_color=False, workdir=None, quiet=False)
    worker.main(args=args, prog_name="python -m settings.worker", obj=context)


if __name__ == "__main__":
    main()
