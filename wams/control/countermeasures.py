"""Countermeasure runtime: feed snapshots and detector events to the rules, carry out what they decide.

Hooks (both return the decisions at once and never wait on a device; commands are sent from a
small thread pool through `execute_command`):

    from wams.control.countermeasures import evaluate_snapshot, on_event

    evaluate_snapshot(snapshot)  # a live snapshot payload (EVENT_SNAPSHOT contract: "t", "pmus") or an
                                 # aligned snapshot (the pdc's SnapshotView); safe on the pdc's event
                                 # loop: no database access there (configuration reloads off-loop)
    on_event(event)              # a wams.detection Event after it was raised, acknowledged or cleared;
                                 # sync (touches the database): from async code wrap it in sync_to_async

Both are wired at start-up (`ControlConfig.ready`): `snapshot_handler` is registered with
`wams.pdc.hooks.register_snapshot_handler` (every aligned snapshot of a pdc process) and
`on_event_changed` receives detection's `event_changed` signal (sent after commit).

Scheme configuration is re-read every REFRESH_S seconds and at once after arming changes made
in this process; `execute_command` re-checks arming from the database before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from typing import Any

import numpy as np
from django.db import close_old_connections, connections

from wams.control.models import AuditRecord, Origin, Scheme
from wams.control.rules import (
    ActionSpec,
    Decision,
    EventInput,
    SchemeSpec,
    SchemeState,
    Series,
    StageSpec,
    evaluate_event,
    evaluate_series,
    parse_live_snapshot,
)
from wams.control.services import CommandRequest, execute_command
from wams.control.services.audit import Actor, write_audit
from wams.detection.models import Event
from wams.grid.models import ControllableDevice

logger = logging.getLogger(__name__)

REFRESH_S = 2.0
WORKERS = 6

SKIPPED_OUTCOMES = {
    "dry_run": AuditRecord.Outcome.DRY_RUN,
    "blocked": AuditRecord.Outcome.BLOCKED,
    "rate_limited": AuditRecord.Outcome.RATE_LIMITED,
}


def load_specs() -> dict[int, SchemeSpec]:
    """Read every scheme into rule specifications."""
    specs: dict[int, SchemeSpec] = {}
    schemes = Scheme.objects.select_related("corridor").prefetch_related("stages", "actions", "pmus")
    for scheme in schemes:
        actions: dict[int, list[ActionSpec]] = {}
        for action in scheme.actions.all():
            actions.setdefault(action.stage, []).append(ActionSpec(action.device_id, action.action, action.value))
        stages = tuple(
            StageSpec(stage.number, stage.threshold, float(stage.duration_ms), tuple(actions.get(stage.number, ())))
            for stage in scheme.stages.all()
        )
        corridor = scheme.corridor
        specs[scheme.pk] = SchemeSpec(
            scheme_id=scheme.pk,
            name=scheme.name,
            stages=stages,
            quantity=scheme.quantity,
            comparison="above" if scheme.comparison == Scheme.Comparison.ABOVE else "below",
            pmu_ids=frozenset(pmu.pk for pmu in scheme.pmus.all()),
            corridor=(corridor.from_pmu_id, corridor.to_pmu_id) if corridor is not None else None,
            min_pmus=scheme.min_pmus,
            event_kinds=frozenset(scheme.event_kind_list()),
            event_quantity=scheme.event_quantity,
            reset_ms=float(scheme.reset_ms),
            rate_limit_count=scheme.rate_limit_count,
            rate_limit_window_s=float(scheme.rate_limit_window_s),
            armed=scheme.armed,
            blocked=scheme.blocked,
            dry_run=scheme.dry_run,
        )
    return specs


def event_input(event: Event) -> EventInput:
    """Describe a detection event for the rules."""
    quantities = {
        key: float(value)
        for key, value in (event.quantities or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return EventInput(
        kind=event.kind,
        state=event.state,
        key=event.dedup_key or f"event:{event.pk}",
        time_s=event.started_at.timestamp() if event.state == Event.State.RAISED else time.time(),
        quantities=quantities,
        pmu_ids=frozenset(event.pmus.values_list("pk", flat=True)),
    )


def series_of_view(view: Any) -> Series:
    """Turn one aligned snapshot (the pdc's SnapshotView: timestamp_s, pmu_ids and arrays (n_pmu,)) into a Series."""
    pmu_ids = [int(p) for p in view.pmu_ids]
    columns = {
        "frequency_hz": view.frequency_hz,
        "rocof_hz_per_s": view.rocof_hz_per_s,
        "magnitude_pu": view.voltage_magnitude_pu,
        "angle_deg": view.voltage_angle_deg,
    }
    values = {
        quantity: {pmu_id: np.asarray(array[i : i + 1], dtype=np.float64) for i, pmu_id in enumerate(pmu_ids)}
        for quantity, array in columns.items()
    }
    return Series(np.array([float(view.timestamp_s)]), values)


class Workers:
    """A fixed set of threads running submitted jobs; each closes its database connections when stopped.

    (A ThreadPoolExecutor's threads would leave their persistent connections open behind them.)
    """

    def __init__(self, count: int, name: str) -> None:
        self.count = count
        self.name = name
        self.jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue a job (starting the threads on first use); return its future."""
        with self.lock:
            if not self.threads:
                self.threads = [
                    threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True) for i in range(self.count)
                ]
                for thread in self.threads:
                    thread.start()
        future: Future[Any] = Future()
        self.jobs.put((future, job, args))
        return future

    def _work(self) -> None:
        while (item := self.jobs.get()) is not None:
            future, job, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job(*args))
            except Exception as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
        connections.close_all()

    def shutdown(self) -> None:
        """Finish the queued jobs, then stop every thread."""
        with self.lock:
            threads, self.threads = self.threads, []
        for _ in threads:
            self.jobs.put(None)
        for thread in threads:
            thread.join(timeout=30)


class CountermeasureRuntime:
    """The rules' state for every scheme in this process, and the threads that carry out decisions."""

    def __init__(self, inline: bool = False, refresh_s: float = REFRESH_S) -> None:
        self.inline = inline  # carry out decisions in the caller's thread (tests)
        self.refresh_s = refresh_s
        self.specs: dict[int, SchemeSpec] = {}
        self.states: dict[int, SchemeState] = {}
        self.lock = threading.Lock()
        self.loaded_at = -float("inf")
        self.refreshing = False
        self.executor = Workers(WORKERS, "countermeasure")
        self.log_executor = Workers(1, "countermeasure-log")

    # configuration -----------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the schemes (database access: not from a running event loop)."""
        specs = load_specs()
        with self.lock:
            self.specs = specs
            self.states = {sid: state for sid, state in self.states.items() if sid in specs}
            self.loaded_at = time.monotonic()
            self.refreshing = False

    def _maybe_reload(self) -> None:
        """Reload when stale: inline from sync code, in the background from an event loop."""
        if time.monotonic() - self.loaded_at < self.refresh_s:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.reload()
            return
        with self.lock:
            if self.refreshing:
                return
            self.refreshing = True
        self.executor.submit(self._background, self.reload)

    # inputs ------------------------------------------------------------------------------------
    def evaluate_snapshot(self, snapshot: Mapping[str, object] | Any) -> list[Decision]:
        """Evaluate the armed schemes on a live snapshot payload or an aligned snapshot; send what they decide."""
        detected_s = time.time()
        self._maybe_reload()
        with self.lock:
            watching = [spec for spec in self.specs.values() if spec.armed and spec.quantity]
        if not watching:
            return []
        series = parse_live_snapshot(snapshot) if isinstance(snapshot, Mapping) else series_of_view(snapshot)
        decisions: list[Decision] = []
        with self.lock:
            for spec in watching:
                state, found = evaluate_series(spec, self.states.get(spec.scheme_id, SchemeState()), series)
                self.states[spec.scheme_id] = state
                decisions.extend(found)
        self._dispatch(decisions, detected_s)
        return decisions

    def on_event(self, event: Event | EventInput) -> list[Decision]:
        """Take one detector event (raised, acknowledged or cleared); send what the schemes decide."""
        detected_s = time.time()
        self._maybe_reload()
        given = event if isinstance(event, EventInput) else event_input(event)
        decisions: list[Decision] = []
        with self.lock:
            for spec in self.specs.values():
                state, found = evaluate_event(spec, self.states.get(spec.scheme_id, SchemeState()), given)
                self.states[spec.scheme_id] = state
                decisions.extend(found)
        self._dispatch(decisions, detected_s)
        return decisions

    # carrying out ------------------------------------------------------------------------------
    def _dispatch(self, decisions: list[Decision], detected_s: float) -> None:
        """Send executable actions first (in parallel), then log every decision once they are out."""
        for decision in decisions:
            logger.warning("%s -> %s (%d action(s))", decision.reason, decision.mode, len(decision.actions))
            sending: list[Future[None]] = []
            if decision.mode == "execute":
                for action in decision.actions:
                    if self.inline:
                        self._send_action(decision, action, detected_s)
                    else:
                        sending.append(
                            self.executor.submit(self._background, self._send_action, decision, action, detected_s)
                        )
            if self.inline:
                self._log_decision(decision)
            else:
                # Logged after the sends so its database write does not delay them.
                self.log_executor.submit(self._background, self._log_after, decision, sending)

    def _log_after(self, decision: Decision, sending: list[Future[None]]) -> None:
        """Wait for a decision's commands to be out, then log the decision."""
        wait(sending)
        self._log_decision(decision)

    @staticmethod
    def _background(job: object, *args: object) -> None:
        """Run a job in a pool thread; log failures; drop unusable or expired database connections."""
        close_old_connections()  # as around a request: persistent connections are kept (CONN_MAX_AGE)
        try:
            job(*args)  # type: ignore[operator]
        except Exception:
            logger.exception("countermeasure job failed")
        finally:
            close_old_connections()

    @staticmethod
    def _send_action(decision: Decision, action: ActionSpec, detected_s: float) -> None:
        """Send one stage action through execute_command."""
        execute_command(
            CommandRequest(
                action=action.action,
                device_id=action.device_id,
                value=action.value,
                reason=decision.reason,
                origin=Origin.RULE,
                scheme_id=decision.scheme_id,
                detected_at_s=detected_s,
            )
        )

    @staticmethod
    def _log_decision(decision: Decision) -> None:
        """Log a stage firing; for dry runs, blocks and rate limits, log each action it did not send."""
        scheme = Scheme.objects.filter(pk=decision.scheme_id).first()
        if scheme is None:
            return
        actor = Actor(Origin.RULE, None, scheme)
        detail = f"mode {decision.mode}; {decision.quantities}"
        write_audit(
            actor, AuditRecord.Outcome.TRIGGERED, action=f"stage {decision.stage}", scheme=scheme,
            reason=decision.reason, detail=detail,
        )  # fmt: skip
        outcome = SKIPPED_OUTCOMES.get(decision.mode)
        if outcome is None:
            return
        devices = ControllableDevice.objects.in_bulk([a.device_id for a in decision.actions])
        for action in decision.actions:
            device = devices.get(action.device_id)
            value = f" to {action.value:g} MW" if action.value is not None else ""
            write_audit(
                actor, outcome, action=action.action, device=device, scheme=scheme, value=action.value,
                reason=decision.reason, detail=f"would {action.action} {device}{value}; not sent ({decision.mode})",
            )  # fmt: skip

    def shutdown(self) -> None:
        """Wait for running jobs and stop the pool."""
        self.executor.shutdown()
        self.log_executor.shutdown()


_runtime = CountermeasureRuntime()


def get_runtime() -> CountermeasureRuntime:
    """Return this process's runtime."""
    return _runtime


def reset_runtime(inline: bool = False) -> CountermeasureRuntime:
    """Replace the runtime (tests): fresh state, optionally carrying out decisions inline."""
    global _runtime
    old, _runtime = _runtime, CountermeasureRuntime(inline=inline)
    old.shutdown()
    return _runtime


def evaluate_snapshot(snapshot: Mapping[str, object] | Any) -> list[Decision]:
    """Evaluate the armed schemes on a live snapshot payload or an aligned SnapshotView (hook for the pdc)."""
    return _runtime.evaluate_snapshot(snapshot)


def snapshot_handler(view: Any) -> None:
    """Take one aligned snapshot from the pdc (registered with wams.pdc.hooks at start-up)."""
    _runtime.evaluate_snapshot(view)


def on_event_changed(sender: object, event_id: int, change: str, **kwargs: object) -> None:
    """Receive detection's event_changed signal (after commit) and feed the event to the schemes."""
    event = Event.objects.filter(pk=event_id).first()
    if event is not None:
        _runtime.on_event(event)


def on_event(event: Event | EventInput) -> list[Decision]:
    """Feed one raised, acknowledged or cleared detection event to the schemes (hook for detection)."""
    return _runtime.on_event(event)


def reload_schemes() -> None:
    """Re-read the scheme configuration now."""
    _runtime.reload()
