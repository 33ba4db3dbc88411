"""Prometheus metrics, collected from the same data as the status page at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailer.status import engine_status


class MailerCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        status = engine_status()
        campaigns = status["running"] + status["waiting"]
        labels = ["campaign_id", "campaign", "status"]

        def per_campaign(
            name: str, doc: str, field: str, kind: type[GaugeMetricFamily | CounterMetricFamily]
        ) -> Metric:
            family = kind(name, doc, labels=labels)
            for c in campaigns:
                value = c[field]
                if value is not None:
                    family.add_metric([str(c["id"]), c["name"], c["status"]], float(value))
            return family

        # Campaigns are reported while running, scheduled or paused; a finished campaign's
        # series end with it.
        counter, gauge = CounterMetricFamily, GaugeMetricFamily
        yield per_campaign(
            "mailer_campaign_sent", "Messages the SMTP server accepted.", "sent", counter
        )
        yield per_campaign(
            "mailer_campaign_failed", "Recipients failed for good.", "failed", counter
        )
        yield per_campaign(
            "mailer_campaign_unknown_outcomes",
            "Messages sent whole whose answer never came (counted as sent).",
            "unknown",
            counter,
        )
        yield per_campaign(
            "mailer_campaign_recipients", "Recipients in the ledger.", "total", gauge
        )
        yield per_campaign("mailer_campaign_pending", "Recipients still to send.", "pending", gauge)
        yield per_campaign(
            "mailer_campaign_rate", "Messages per second over the last 10 seconds.", "rate", gauge
        )
        yield per_campaign(
            "mailer_campaign_rate_limit",
            "Messages per second the campaign may send now.",
            "rate_limit",
            gauge,
        )
        limited = GaugeMetricFamily(
            "mailer_campaign_limited_by",
            "1 for what holds the campaign back now (running_slots, global_rate, ...).",
            labels=["campaign_id", "campaign", "limited_by"],
        )
        for c in campaigns:
            if c["limited_by"]:
                limited.add_metric([str(c["id"]), c["name"], c["limited_by"]], 1)
        yield limited

        queues = GaugeMetricFamily(
            "mailer_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"]
        )
        for queue, depth in status["queues"].items():
            queues.add_metric([queue], depth)
        yield queues

        capacity = status["capacity"]
        yield GaugeMetricFamily(
            "mailer_worker_slots",
            "Send slots online (concurrency of live send workers).",
            value=capacity["worker_slots"],
        )
        yield GaugeMetricFamily(
            "mailer_workers_online", "Workers with a live heartbeat.", value=len(status["workers"])
        )
        yield GaugeMetricFamily(
            "mailer_batches_running",
            "Batches running in worker processes.",
            value=capacity["batches_running"],
        )
        yield GaugeMetricFamily(
            "mailer_running_campaigns", "Campaigns running.", value=capacity["running_campaigns"]
        )
        yield GaugeMetricFamily(
            "mailer_max_running_campaigns",
            "Settings → Performance: max running campaigns.",
            value=capacity["max_running_campaigns"],
        )
        worker_rss = GaugeMetricFamily(
            "mailer_worker_rss_bytes",
            "Resident memory of a worker and its pool.",
            labels=["worker"],
        )
        for w in status["workers"]:
            if w["rss_bytes"] is not None:
                worker_rss.add_metric([w["hostname"]], w["rss_bytes"])
        yield worker_rss

        throttled = GaugeMetricFamily(
            "mailer_smtp_server_backoff_rate",
            "Messages per second an SMTP server that complained of too much mail takes now "
            "(adaptive back-off); no series while it is not throttled.",
            labels=["server"],
        )
        for server in status["smtp_servers"]:
            if server["backoff"]:
                throttled.add_metric([server["name"]], server["backoff"]["rate"])
        yield throttled


def render() -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MailerCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
