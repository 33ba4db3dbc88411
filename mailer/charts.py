"""A chart as the admin's pages hand it to the browser: its data as JSON (drawn by the
project's own copy of Chart.js, workbench/static/workbench/charts.js), the same numbers as a
table one click away, and as CSV (`?csv=<chart id>` on the page that shows it)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse

from subscribers.exports import cell

Number = int | float


@dataclass
class Chart:
    id: str
    title: str
    kind: str  # "line", "bar", "doughnut" or "hbar" (bars across)
    labels: list[str]
    series: dict[str, list[Number]]
    unit: str = ""  # "%" for rates
    stacked: bool = False
    note: str = ""
    label_name: str = "label"
    extra: dict[str, Any] = field(default_factory=dict)
    # Shorter labels for the chart's axis (times without the date); the table keeps `labels`.
    short_labels: list[str] | None = None

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "labels": self.labels,
            "series": [{"label": name, "data": data} for name, data in self.series.items()],
            "unit": self.unit,
            "stacked": self.stacked,
            "title": self.title,
            "short_labels": self.short_labels,
        }

    @property
    def columns(self) -> list[str]:
        return [self.label_name, *self.series]

    @property
    def rows(self) -> list[list[Any]]:
        values = list(self.series.values())
        return [[label, *(data[i] for data in values)] for i, label in enumerate(self.labels)]

    @property
    def empty(self) -> bool:
        return not self.labels or not any(any(data) for data in self.series.values())


def as_csv(chart: Chart, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{chart.id}.csv"'
    writer = csv.writer(response)
    writer.writerow(chart.columns)
    for row in chart.rows:
        # A label that looks like a formula is not one in a spreadsheet (CSV injection).
        writer.writerow([cell(value) if isinstance(value, str) else value for value in row])
    return response


def pick(charts: list[Chart], name: str | None) -> Chart | None:
    return next((chart for chart in charts if chart.id == name), None)
