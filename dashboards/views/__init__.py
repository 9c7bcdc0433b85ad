"""Operator pages."""

from dashboards.views.events import acknowledge, event_detail, event_list
from dashboards.views.history import history, history_export
from dashboards.views.incidents import incident_acknowledge, incident_detail, incident_list, incident_shelve
from dashboards.views.live import overview, phasors, pmu_detail, pmu_list, substation_detail
from dashboards.views.scenarios import scenarios

__all__ = [
    "acknowledge",
    "event_detail",
    "event_list",
    "history",
    "history_export",
    "incident_acknowledge",
    "incident_detail",
    "incident_list",
    "incident_shelve",
    "overview",
    "phasors",
    "pmu_detail",
    "pmu_list",
    "scenarios",
    "substation_detail",
]
