"""Incidents: the symptoms of one disturbance grouped, classified and located (pure numpy, no Django)."""

from wams.detection.analytics.incidents.classify import ClassifyConfig
from wams.detection.analytics.incidents.correlator import CorrelatorConfig, IncidentCorrelator
from wams.detection.analytics.incidents.topology import GridTopology, Unit
from wams.detection.analytics.incidents.types import (
    IncidentKind,
    IncidentPhase,
    IncidentReport,
    Location,
    LocationMethod,
)

__all__ = [
    "ClassifyConfig",
    "CorrelatorConfig",
    "GridTopology",
    "IncidentCorrelator",
    "IncidentKind",
    "IncidentPhase",
    "IncidentReport",
    "Location",
    "LocationMethod",
    "Unit",
]
