"""The snapshot handler: the bank on the pdc's event loop, database work on one worker thread."""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wams.detection.analytics.fast import FastDetectorBank
from wams.detection.analytics.incidents import CorrelatorConfig, IncidentCorrelator, IncidentReport
from wams.detection.analytics.types import Detection, DetectionPhase, Severity, Snapshot
from wams.detection.live.events import apply_detection, apply_incident, clear_left_over, event_key
from wams.detection.live.plan import DetectorPlan, default_plan, load_plan
from wams.pdc.livefeed import SnapshotView

logger = logging.getLogger(__name__)

RELOAD_S = 30.0  # settings are re-read this often (wall clock) and applied when they changed
QUEUE_LIMIT = 10_000


@dataclass
class _State:
    """What the handler keeps between snapshots (touched by the event loop only)."""

    pmu_ids: tuple[int, ...] = ()
    ids_array: Any = None
    plan: DetectorPlan | None = None
    bank: FastDetectorBank | None = None
    last_timestamp_s: float = -math.inf
    next_reload_s: float = 0.0
    seen: Any = None  # (n_pmu,) bool: PMUs that have reported since this set began
    seen_sets: set[tuple[int, ...]] = field(default_factory=set)
    correlator: IncidentCorrelator | None = None
    generation: int = 0  # a new correlator per bank: its incident numbers start over
    event_keys: dict[str, str] = field(default_factory=dict)  # detection key -> event dedup key


class LiveDetection:
    """Run the fast detectors on every snapshot; raise and clear events from a worker thread."""

    def __init__(
        self,
        plan_loader: Callable[[tuple[int, ...]], DetectorPlan] = load_plan,
        apply: Callable[[Detection, DetectorPlan], None] = apply_detection,
        reload_s: float = RELOAD_S,
        apply_report: Callable[[IncidentReport, str, list[str]], None] | None = apply_incident,
        tidy: Callable[[Sequence[int], dt.datetime, dt.datetime], int] | None = clear_left_over,
    ) -> None:
        """Create the detector; the worker thread starts with the first snapshot.

        `tidy(pmu_ids, started_at, now)` runs once per new set of PMUs, before any detection of it.
        """
        self.plan_loader = plan_loader
        self.apply = apply
        self.apply_report = apply_report
        self.run_token = f"{time.time():.3f}"
        self.incidents = 0
        self.correlator_failures = 0
        self.tidy = tidy
        self.reload_s = reload_s
        self.started_at = dt.datetime.now(tz=dt.UTC)
        self.state = _State()
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.loaded: DetectorPlan | None = None  # handed from the worker to the handler
        self.snapshots = 0
        self.detections = 0
        self.dropped = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # event loop side ------------------------------------------------------------------------
    def __call__(self, view: SnapshotView) -> None:
        """Feed one snapshot to the bank and queue what it raised or cleared (never blocks)."""
        st = self.state
        if view.pmu_ids is not st.ids_array:
            ids = tuple(int(p) for p in view.pmu_ids)
            st.ids_array = view.pmu_ids
            if ids != st.pmu_ids:
                self._switch(ids)
        loaded = self.loaded
        if loaded is not None and loaded.pmu_ids == st.pmu_ids and loaded is not st.plan:
            self._adopt(loaded)
        now = time.monotonic()
        if now >= st.next_reload_s:
            st.next_reload_s = now + self.reload_s
            self._put(("plan", st.pmu_ids))
        if view.timestamp_s <= st.last_timestamp_s or st.bank is None or st.plan is None:
            return
        st.last_timestamp_s = view.timestamp_s
        self.snapshots += 1
        # A PMU that has not reported yet (its link still connecting) is not stale: its data is
        # unknown (NaN), which every detector ignores. Only data that stops after it came is.
        st.seen |= view.present
        snapshot = Snapshot(
            timestamp_s=view.timestamp_s,
            frequency_hz=view.frequency_hz,
            rocof_hz_per_s=view.rocof_hz_per_s,
            voltage_magnitude_pu=view.voltage_magnitude_pu,
            voltage_angle_deg=view.voltage_angle_deg,
            stat=view.stat,
            present=view.present | ~st.seen,
            current_magnitude_a=self._currents(view, st.plan) if st.plan.currents else None,
        )
        found = st.bank.update(snapshot)
        for detection in found:
            self.detections += 1
            st.event_keys[detection.key] = event_key(detection, st.plan.pmu_ids)
            self._put(("detection", (detection, st.plan)))
        self._correlate(snapshot, found)

    @staticmethod
    def _currents(view: SnapshotView, plan: DetectorPlan) -> np.ndarray:
        """Return the magnitudes (A) of the plan's line-current phasors in this snapshot (nan where absent)."""
        samples = view.snapshot.samples
        ids = plan.pmu_ids
        out = np.full(len(plan.currents), np.nan)
        for c, (i, k) in enumerate(plan.currents):
            sample = samples.get(ids[i])
            if sample is not None and k < len(sample.phasors):
                out[c] = abs(sample.phasors[k])
        return out

    def _correlate(self, snapshot: Snapshot, found: list[Detection]) -> None:
        """Feed the incident correlator; queue its reports after the detections they group."""
        st = self.state
        if st.correlator is None or st.plan is None or self.apply_report is None:
            return
        try:
            reports = st.correlator.update(snapshot, found)
        except Exception:
            # A bug in one classification must not wedge every later one: log it and start over.
            self.correlator_failures += 1
            logger.exception(
                "live detection: incident correlator failed (%d so far); restarted", self.correlator_failures
            )
            self._new_correlator()
            return
        for report in reports:
            self.incidents += 1
            keys = [st.event_keys[k] for k in report.symptoms if k in st.event_keys]
            correlation_key = f"live:{self.run_token}:{st.generation}:{report.number}"
            self._put(("incident", (report, correlation_key, keys)))

    def _switch(self, ids: tuple[int, ...]) -> None:
        """Start over for a new set of PMUs: defaults until their settings are loaded."""
        st = self.state
        self._close_bank("PMU set changed")
        st.pmu_ids = ids
        st.plan = default_plan(ids) if self.loaded is None or self.loaded.pmu_ids != ids else self.loaded
        st.bank = FastDetectorBank(len(ids), st.plan.config) if ids else None
        self._new_correlator()
        st.seen = np.zeros(len(ids), dtype=bool)
        st.next_reload_s = 0.0
        if ids not in st.seen_sets:
            st.seen_sets.add(ids)
            self._put(("left_over", ids))

    def _adopt(self, plan: DetectorPlan) -> None:
        """Use newly loaded settings (a new bank only when they differ from the current ones)."""
        st = self.state
        if st.plan is not None and st.plan.fingerprint == plan.fingerprint:
            st.plan = plan
            return
        self._close_bank("detector settings changed")
        st.plan = plan
        st.bank = FastDetectorBank(len(plan.pmu_ids), plan.config)
        self._new_correlator()

    def _new_correlator(self) -> None:
        """Start a correlator on the current plan's topology (none without PMUs)."""
        st = self.state
        st.generation += 1
        st.event_keys = {}
        if st.plan is None or st.bank is None:
            st.correlator = None
            return
        st.correlator = IncidentCorrelator(st.plan.topology, CorrelatorConfig(sustained=st.plan.sustained))

    def _close_bank(self, reason: str) -> None:
        """Clear the conditions the current bank holds raised: a new bank would never clear them."""
        st = self.state
        if st.bank is None or st.plan is None:
            return
        for detection in st.bank.open_detections():
            closing = Detection(
                kind=detection.kind,
                phase=DetectionPhase.CLEARED,
                severity=Severity.INFO,
                pmu_indices=detection.pmu_indices,
                start_time_s=detection.start_time_s,
                detected_time_s=detection.detected_time_s,
                end_time_s=detection.detected_time_s,
                quantities={},
                key=detection.key,
            )
            self._put(("detection", (closing, st.plan)))
        logger.info("live detection: new detector bank (%s)", reason)

    def _put(self, item: tuple[str, Any]) -> None:
        """Queue work for the worker thread, starting it if needed."""
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.error("live detection: worker queue full, %d items dropped", self.dropped)
            return
        self.queue.put(item)
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="live-detection", daemon=True)
                self._thread.start()

    # worker side ----------------------------------------------------------------------------
    def _work(self) -> None:
        """Take queued items in order until a stop item arrives."""
        from django.db import close_old_connections

        while True:
            kind, payload = self.queue.get()
            try:
                if kind == "stop":
                    return
                close_old_connections()
                self._do(kind, payload)
            except Exception:
                logger.exception("live detection: %s failed", kind)
            finally:
                self.queue.task_done()

    def _do(self, kind: str, payload: Any) -> None:
        """Carry out one queued item."""
        if kind == "detection":
            detection, plan = payload
            self.apply(detection, plan)
        elif kind == "incident" and self.apply_report is not None:
            report, correlation_key, keys = payload
            self.apply_report(report, correlation_key, keys)
        elif kind == "plan":
            if payload:
                self.loaded = self.plan_loader(payload)
        elif kind == "left_over" and self.tidy is not None:
            count = self.tidy(payload, self.started_at, dt.datetime.now(tz=dt.UTC))
            if count:
                logger.info("live detection: cleared %d events left over by an earlier run", count)

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until the worker has done everything queued so far; return False on timeout."""
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the queued work and stop the worker thread."""
        if self._thread is not None and self._thread.is_alive():
            self.queue.put(("stop", None))
            self._thread.join(timeout_s)
        self._thread = None


_installed: LiveDetection | None = None


def install_live_detection() -> LiveDetection:
    """Register the live detectors with this process's pdc (idempotent); return them."""
    from wams.pdc.hooks import register_snapshot_handler

    global _installed
    if _installed is None:
        _installed = LiveDetection()
    register_snapshot_handler(_installed)
    return _installed


def uninstall_live_detection() -> None:
    """Unregister the live detectors and stop their worker."""
    from wams.pdc.hooks import unregister_snapshot_handler

    global _installed
    if _installed is not None:
        unregister_snapshot_handler(_installed)
        _installed.stop()
        _installed = None
