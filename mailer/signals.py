"""Celery worker signals: announce workers in Redis while they run."""

from __future__ import annotations

from celery.signals import worker_ready, worker_shutdown

from mailer import heartbeats


@worker_ready.connect
def announce_worker(sender, **kwargs) -> None:
    consumer = sender  # the worker's consumer
    worker = consumer.controller
    queues = sorted(consumer.app.amqp.queues.consume_from)
    heartbeats.start_worker_heartbeat(
        hostname=consumer.hostname,
        queues=queues,
        concurrency=worker.concurrency,
        pool=type(worker.pool).__module__.rsplit(".", 1)[-1],
    )


@worker_shutdown.connect
def retire_worker(sender, **kwargs) -> None:
    heartbeats.stop_worker_heartbeat(sender.hostname)
