"""Fast detectors in the pdc: every aligned snapshot through the detector bank, detections into Events.

`install_live_detection()` registers a snapshot handler with the pdc (`wams.pdc.hooks`). The handler
runs on the pdc's event loop and only does array work: it feeds the snapshot to a
`FastDetectorBank` and puts what is raised or cleared on a queue. One worker thread takes the
queue in order and does every database access: loading the thresholds (`DetectorSettings` per
device group, corridors, control areas) and raising or clearing events. Event times are the
measurement times of the snapshots, never the wall clock.
"""

from wams.detection.live.events import KEY_PREFIX, SOURCE, apply_detection, clear_left_over, describe, event_key
from wams.detection.live.handler import LiveDetection, install_live_detection, uninstall_live_detection
from wams.detection.live.plan import DetectorPlan, default_plan, load_plan

__all__ = [
    "KEY_PREFIX",
    "SOURCE",
    "DetectorPlan",
    "LiveDetection",
    "apply_detection",
    "clear_left_over",
    "default_plan",
    "describe",
    "event_key",
    "install_live_detection",
    "load_plan",
    "uninstall_live_detection",
]
