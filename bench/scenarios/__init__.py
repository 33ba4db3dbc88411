"""The benchmark scenarios, one module each. Each returns a dict of figures; bench/__main__
runs them and reports."""

from bench.scenarios.common import median_report, save
from bench.scenarios.control import control_latency
from bench.scenarios.fairness import fairness
from bench.scenarios.files import subscriber_files
from bench.scenarios.peer import peer
from bench.scenarios.rates import rate_accuracy
from bench.scenarios.raw import raw_baseline
from bench.scenarios.scale import scale
from bench.scenarios.ten_million import pages_again, ten_million
from bench.scenarios.throughput import throughput
from bench.scenarios.tracking import tracking

__all__ = [
    "control_latency",
    "fairness",
    "median_report",
    "pages_again",
    "peer",
    "rate_accuracy",
    "raw_baseline",
    "save",
    "scale",
    "subscriber_files",
    "ten_million",
    "throughput",
    "tracking",
]
