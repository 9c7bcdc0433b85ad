"""Oscillation monitoring in workers: recent historian data through the oscillation analytics.

Every run (a beat task, ~10 s) reads the last `window_s` seconds (default 120) of frequency and
bus-voltage angle of the PMUs onto one time grid and:
- replays them through a fresh `OscillationMonitor` that only watches for ringdowns (a sudden rise
  of oscillatory energy, then matrix pencil on what follows);
- scans two overlapping windows, 10 s apart, for forced oscillations (both must see one);
- every `ambient_interval_s` estimates ambient modes over the last `ambient_window_s` (default
  300) and records them; a poorly damped ambient mode alarms once three analyses in a row saw it.
A condition seen is a sighting. Sightings update the active event of the same kind and nearby
frequency, or raise a new one; an event no run has seen for `clear_after_s` clears, ending at its
last sighting. No state lives in a worker between runs: only the events and the analyses rows.
"""

from wams.detection.oscillations.analysis import (
    FORCED,
    KINDS,
    POORLY_DAMPED,
    Channels,
    OscillationParams,
    Sighting,
    after_last_gap,
    ambient_poorly_damped,
    forced_sightings,
    make_channels,
    ringdown_sightings,
)
from wams.detection.oscillations.monitor import (
    SOURCE,
    confirmed_ambient,
    load_params,
    monitor_oscillations,
    read_window,
    record_sightings,
    without_forced,
)

__all__ = [
    "FORCED",
    "KINDS",
    "POORLY_DAMPED",
    "SOURCE",
    "Channels",
    "OscillationParams",
    "Sighting",
    "after_last_gap",
    "ambient_poorly_damped",
    "confirmed_ambient",
    "forced_sightings",
    "load_params",
    "make_channels",
    "monitor_oscillations",
    "read_window",
    "record_sightings",
    "ringdown_sightings",
    "without_forced",
]
