"""Operator pages."""

from dashboards.views.events import acknowledge, event_detail, event_list
from dashboards.views.history import history, history_export
from dashboards.views.live import overview, phasors, pmu_detail, pmu_list, substation_detail

__all__ = [
    "acknowledge",
    "event_detail",
    "event_list",
    "history",
    "history_export",
    "overview",
    "phasors",
    "pmu_detail",
    "pmu_list",
    "substation_detail",
]
