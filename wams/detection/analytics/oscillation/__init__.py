"""Oscillation monitoring: ringdown and ambient modes, forced oscillations, damping alarms."""

from wams.detection.analytics.oscillation.ambient import AmbientConfig, estimate_ambient_modes
from wams.detection.analytics.oscillation.forced import (
    ForcedOscillation,
    ForcedOscillationConfig,
    detect_forced_oscillations,
)
from wams.detection.analytics.oscillation.modes import DampingLevels, Mode
from wams.detection.analytics.oscillation.monitor import ModeEstimate, OscillationConfig, OscillationMonitor
from wams.detection.analytics.oscillation.pencil import PencilConfig, estimate_ringdown_modes

__all__ = [
    "AmbientConfig",
    "DampingLevels",
    "ForcedOscillation",
    "ForcedOscillationConfig",
    "Mode",
    "ModeEstimate",
    "OscillationConfig",
    "OscillationMonitor",
    "PencilConfig",
    "detect_forced_oscillations",
    "estimate_ambient_modes",
    "estimate_ringdown_modes",
]
