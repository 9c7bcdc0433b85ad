"""One c104 client per process, one connection per RTU, kept open; commands with select-before-execute.

c104 runs its own threads and calls back into Python from them: the callbacks here only record
what arrived (under a condition variable) and never touch the database.  `Iec104Pool.operate` is
blocking: it selects and executes through c104 (which sends S/E = 1, waits for the activation
confirmation, then S/E = 0), and then waits for the termination and the status point.
"""

# No `from __future__ import annotations`: c104 checks callback annotations as real types.
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import c104

from wams.control.iec104.points import (
    PointCommand,
    PointPlan,
    WireResult,
    command_value,
    plan_for,
    reached,
    state_of,
)

logger = logging.getLogger(__name__)

COT_ACTIVATION_CON = 7
COT_ACTIVATION_TERMINATION = 10
# Command type ids without time tag (45-51) and with CP56 time tag (58-64).
COMMAND_TYPE_IDS = frozenset(range(45, 52)) | frozenset(range(58, 65))
# c104 sometimes leaves a fresh connection muted (STARTDT unanswered): send STARTDT again after this long.
OPEN_RETRY_S = 0.2
UNMUTE_TRIES = 20
# How long a command waits for a link to an RTU to start (at least; the command timeout if longer).
CONNECT_TIMEOUT_S = 8.0  # a fresh c104 link can take seconds to start on a loaded machine
# After a refused transmit, how long to wait for the negative confirmation to be seen.
NEGATIVE_GRACE_S = 0.3
# c104 2.2.1 can miss the wake-up of a command whose confirmation arrives before it starts waiting
# (it waits on its condition variable without first looking at the result), and then sits out the
# whole command timeout.  Any other awaited answer on the connection wakes it: when a command has
# been answered and c104 has not moved on after this long, the link asks the RTU for a status value.
NUDGE_AFTER_S = 0.015
WATCH_PERIOD_S = 0.005


@dataclass(frozen=True)
class Confirmation:
    """One activation confirmation or termination seen for a command point."""

    cot: int
    negative: bool
    select: bool
    at_s: float


@dataclass(frozen=True)
class StatusReport:
    """The last value a status point reported."""

    value: object
    at_s: float


def parse_command_reply(apdu: bytes) -> tuple[int, int, Confirmation] | None:
    """Return (common address, IOA, confirmation) of an I-frame answering a command, else None."""
    if len(apdu) < 16 or apdu[0] != 0x68 or apdu[2] & 0x01:
        return None
    type_id = apdu[6]
    if type_id not in COMMAND_TYPE_IDS:
        return None
    cot = apdu[8] & 0x3F
    if cot not in (COT_ACTIVATION_CON, COT_ACTIVATION_TERMINATION):
        return None
    negative = bool(apdu[8] & 0x40)
    common_address = apdu[10] | apdu[11] << 8
    ioa = apdu[12] | apdu[13] << 8 | apdu[14] << 16
    # The qualifier (SCO, DCO, QOS) ends the element; time-tagged types carry 7 time bytes after it.
    qualifier = apdu[-8] if type_id >= 58 else apdu[-1]
    return common_address, ioa, Confirmation(cot, negative, bool(qualifier & 0x80), time.time())


class RtuLink:
    """One connection to an RTU and what it reported: confirmations per command point, status values."""

    def __init__(self, client: c104.Client, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.cond = threading.Condition()
        self.confirmations: dict[tuple[int, int], list[Confirmation]] = {}
        self.status: dict[tuple[int, int], StatusReport] = {}
        self.status_points: dict[tuple[int, int], c104.Point] = {}
        self._interrogated: set[int] = set()
        self._connect_asked = False
        self._nudges = 0
        connection = client.add_connection(ip=host, port=port, init=c104.Init.INTERROGATION)
        if connection is None:
            connection = client.get_connection(ip=host, port=port)
        if connection is None:
            raise ConnectionError(f"cannot add an IEC 104 connection to {host}:{port}")
        self.connection = connection
        connection.on_state_change(callable=self._on_state)
        connection.on_receive_raw(callable=self._on_raw)

    # c104 callbacks (c104 threads) -------------------------------------------------------------
    def _on_state(self, connection: c104.Connection, state: c104.ConnectionState) -> None:
        # State callbacks can arrive out of order from different c104 threads: only wake the waiters,
        # who read the connection's current state.
        with self.cond:
            self.cond.notify_all()
        if state == c104.ConnectionState.OPEN_MUTED:
            self._schedule_unmute(UNMUTE_TRIES)

    def _schedule_unmute(self, tries: int) -> None:
        """Check again shortly whether the link is still muted (STARTDT unanswered) and send STARTDT."""
        timer = threading.Timer(OPEN_RETRY_S, self._unmute_if_stuck, args=(tries,))
        timer.daemon = True
        timer.start()

    def _unmute_if_stuck(self, tries: int) -> None:
        if tries <= 0 or self.connection.state != c104.ConnectionState.OPEN_MUTED:
            return
        logger.debug("IEC 104 link %s:%s connected but not started; sending STARTDT", self.host, self.port)
        self.connection.unmute()
        self._schedule_unmute(tries - 1)

    @property
    def is_open(self) -> bool:
        """Tell whether the link is started (STARTDT confirmed)."""
        return bool(self.connection.state == c104.ConnectionState.OPEN)

    def _on_raw(self, connection: c104.Connection, data: bytes) -> None:
        parsed = parse_command_reply(data)
        if parsed is None:
            return
        common_address, ioa, confirmation = parsed
        with self.cond:
            self.confirmations.setdefault((common_address, ioa), []).append(confirmation)
            self.cond.notify_all()

    def _on_status(
        self, point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        with self.cond:
            self.status[(message.common_address, point.io_address)] = StatusReport(point.value, time.time())
            self.cond.notify_all()
        return c104.ResponseState.NONE

    # points ------------------------------------------------------------------------------------
    def _station(self, common_address: int) -> c104.Station:
        station = self.connection.get_station(common_address) or self.connection.add_station(common_address)
        if station is None:
            raise ConnectionError(f"cannot add station {common_address} on {self.host}:{self.port}")
        return station

    def command_point(self, common_address: int, ioa: int, point_type: c104.Type) -> c104.Point:
        """Return the client-side command point, adding it on first use."""
        station = self._station(common_address)
        point = station.get_point(ioa)
        if point is None:
            point = station.add_point(io_address=ioa, type=point_type, command_mode=c104.CommandMode.SELECT_AND_EXECUTE)
        if point is None or point.type != point_type:
            raise ValueError(f"IOA {ioa} at CA {common_address} is not a {point_type.name} command point")
        return point

    def attach(self, common_address: int, point: c104.Point) -> None:
        """Follow a monitoring point: every value it reports lands in `status`."""
        point.on_receive(callable=self._on_status)
        with self.cond:
            self.status_points[(common_address, point.io_address)] = point

    def status_point(self, common_address: int, ioa: int, plan: PointPlan) -> c104.Point | None:
        """Return the status point as the RTU reported it, or None while unknown (an interrogation is asked).

        Status points are created when the RTU first reports them (`Iec104Pool._on_new_point`), so
        they carry the RTU's own type (with or without time tag).
        """
        with self.cond:
            point = self.status_points.get((common_address, ioa))
        if point is None:
            station = self.connection.get_station(common_address)
            point = station.get_point(ioa) if station is not None else None
            if point is not None:
                self.attach(common_address, point)
        if point is not None:
            if not plan.status_accepts(point.type):
                raise ValueError(f"IOA {ioa} at CA {common_address} reports {point.type.name}, not a device status")
            return point
        if self.is_open and common_address not in self._interrogated:
            self._interrogated.add(common_address)
            threading.Thread(target=self._interrogate, args=(common_address,), daemon=True).start()
        return None

    def _interrogate(self, common_address: int) -> None:
        try:
            self.connection.interrogation(common_address=common_address, wait_for_response=False)
        except (RuntimeError, ValueError) as exc:
            logger.debug("interrogation of CA %s not sent: %s", common_address, exc)

    def ask(self, point: c104.Point) -> None:
        """Ask the RTU for a point's value without waiting (the answer lands in `status`)."""
        threading.Thread(target=self._read_quietly, args=(point,), daemon=True).start()

    @staticmethod
    def _read_quietly(point: c104.Point) -> None:
        try:
            point.read()
        except (RuntimeError, ValueError) as exc:  # c104: "command ... already running", link gone
            logger.debug("read of IOA %s not sent: %s", point.io_address, exc)

    def nudge(self, common_address: int, status: c104.Point | None) -> None:
        """Make the RTU answer something awaited, which wakes a c104 command waiter that missed its answer."""
        self._nudges += 1
        if status is not None:
            self.ask(status)
            return

        def test() -> None:
            try:
                self.connection.test(common_address=common_address, with_time=True, wait_for_response=True)
            except (RuntimeError, ValueError) as exc:
                logger.debug("test command not sent: %s", exc)

        threading.Thread(target=test, daemon=True).start()

    def watch(self, common_address: int, ioa: int, mark: int, status: c104.Point | None) -> threading.Event:
        """Watch a command in flight: nudge when its last answer is old and c104 has not returned."""
        done = threading.Event()

        def run() -> None:
            nudged_at = -1
            while not done.wait(WATCH_PERIOD_S):
                replies = self.confirmations_since(common_address, ioa, mark)
                if replies and len(replies) != nudged_at and time.time() - replies[-1].at_s > NUDGE_AFTER_S:
                    nudged_at = len(replies)
                    self.nudge(common_address, status)

        threading.Thread(target=run, daemon=True).start()
        return done

    # waiting -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Ask c104 to connect (once); it keeps reconnecting on its own."""
        with self.cond:
            first, self._connect_asked = not self._connect_asked, True
        if first:
            self.connection.connect()

    def ensure_open(self, deadline: float) -> bool:
        """Connect if needed and wait until the link is started (STARTDT confirmed) or the deadline passes."""
        with self.cond:
            if self.is_open:
                return True
        self.start()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self.cond:
                if self.cond.wait_for(lambda: self.is_open, timeout=min(OPEN_RETRY_S, remaining)):
                    return True
            state = self.connection.state
            if state == c104.ConnectionState.OPEN_MUTED:
                logger.debug("IEC 104 link %s:%s connected but not started; sending STARTDT", self.host, self.port)
                self.connection.unmute()
            elif state == c104.ConnectionState.CLOSED:
                self.connection.connect()

    def confirmation_mark(self, common_address: int, ioa: int) -> int:
        """Return how many confirmations the point has had so far."""
        with self.cond:
            return len(self.confirmations.get((common_address, ioa), []))

    def confirmations_since(self, common_address: int, ioa: int, mark: int) -> list[Confirmation]:
        """Return the confirmations seen after a mark."""
        with self.cond:
            return list(self.confirmations.get((common_address, ioa), [])[mark:])

    def wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait until a predicate over what arrived holds, or the deadline (monotonic s) passes."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout=max(0.0, deadline - time.monotonic()))


class Iec104Pool:
    """Process-wide IEC 104 client: one connection per RTU (host, port), opened on first use and kept."""

    def __init__(self, command_timeout_ms: int = 5000) -> None:
        self.command_timeout_ms = command_timeout_ms
        self.client = c104.Client(tick_rate_ms=50, command_timeout_ms=command_timeout_ms)
        self.client.on_new_point(callable=self._on_new_point)
        self.client.start()
        self.links: dict[tuple[str, int], RtuLink] = {}
        self.lock = threading.Lock()

    def link(self, host: str, port: int) -> RtuLink:
        """Return the link to an RTU, creating it on first use."""
        with self.lock:
            key = (host, port)
            if key not in self.links:
                self.links[key] = RtuLink(self.client, host, port)
            return self.links[key]

    def _on_new_point(self, client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type) -> None:
        """Create a point the RTU reports for the first time, with its type, and follow it."""
        point = station.add_point(io_address=io_address, type=point_type)
        connection = station.connection
        if point is None or connection is None:
            return
        link = self.links.get((connection.ip, connection.port))
        if link is not None:
            link.attach(station.common_address, point)

    def operate(self, command: PointCommand, timeout_s: float | None = None) -> WireResult:
        """Select and execute one command; wait for confirmation, termination and status (blocking)."""
        timeout_s = self.command_timeout_ms / 1000.0 if timeout_s is None else timeout_s
        plan = plan_for(command.kind)
        target = command_value(command.kind, command.action, command.value)
        link = self.link(command.host, command.port)
        ca = command.common_address
        point = link.command_point(ca, command.ioa, plan.command_type)
        if not link.ensure_open(time.monotonic() + max(timeout_s, CONNECT_TIMEOUT_S)):
            return WireResult("failed", f"RTU {command.host}:{command.port} unreachable (no started link)")
        status = link.status_point(ca, command.status_ioa, plan) if command.status_ioa else None
        mark = link.confirmation_mark(ca, command.ioa)
        point.value = target
        watching = link.watch(ca, command.ioa, mark, status)
        sent_at = time.time()
        try:
            accepted = point.transmit(cause=c104.Cot.ACTIVATION)
        finally:
            watching.set()
        returned_at = time.time()
        executed = any(
            c.cot == COT_ACTIVATION_CON and not c.select and not c.negative
            for c in link.confirmations_since(ca, command.ioa, mark)
        )
        if not accepted and not executed:
            return self._refusal(link, command, mark, sent_at, returned_at)
        # Accepted, or the execute was confirmed but c104 gave up waiting for the termination.
        return self._follow(link, command, mark, sent_at, returned_at, timeout_s)

    def _refusal(
        self, link: RtuLink, command: PointCommand, mark: int, sent_at: float, returned_at: float
    ) -> WireResult:
        """Explain a transmit that was not confirmed: negative confirmation, no answer, or no link."""
        ca, ioa = command.common_address, command.ioa

        def negative_seen() -> bool:
            return any(c.negative for c in link.confirmations_since(ca, ioa, mark))

        link.wait(negative_seen, time.monotonic() + NEGATIVE_GRACE_S)
        replies = link.confirmations_since(ca, ioa, mark)
        negative = next((c for c in replies if c.negative), None)
        select_at = next((c.at_s for c in replies if c.select and not c.negative), None)
        if negative is not None:
            step = "selection" if negative.select else "execution"
            return WireResult(
                "failed",
                f"device refused the {step} (negative activation confirmation)",
                sent_at_s=sent_at,
                select_confirmed_at_s=select_at,
                confirmed_at_s=negative.at_s,
            )
        if returned_at - sent_at >= 0.9 * self.command_timeout_ms / 1000.0:
            step = "execute" if select_at is not None else "select"
            return WireResult(
                "timeout",
                f"no activation confirmation of the {step} within {self.command_timeout_ms} ms",
                sent_at_s=sent_at,
                select_confirmed_at_s=select_at,
            )
        return WireResult("failed", "the RTU link dropped before the command was confirmed", sent_at_s=sent_at)

    def _follow(
        self, link: RtuLink, command: PointCommand, mark: int, sent_at: float, returned_at: float, timeout_s: float
    ) -> WireResult:
        """After a positive confirmation, wait for the termination and the status point to show the action."""
        ca = command.common_address
        status_key = (ca, command.status_ioa) if command.status_ioa else None
        deadline = time.monotonic() + max(0.0, timeout_s - (returned_at - sent_at))

        def terminated() -> bool:
            return any(c.cot == COT_ACTIVATION_TERMINATION for c in link.confirmations_since(ca, command.ioa, mark))

        def status_reached() -> bool:
            report = link.status.get(status_key) if status_key else None
            return report is not None and reached(command.kind, command.action, command.value, report.value)

        done = link.wait(status_reached if status_key else terminated, deadline)
        replies = link.confirmations_since(ca, command.ioa, mark)
        select_at = next((c.at_s for c in replies if c.select and c.cot == COT_ACTIVATION_CON), None)
        confirmed_at = next(
            (c.at_s for c in replies if not c.select and c.cot == COT_ACTIVATION_CON and not c.negative), returned_at
        )
        terminated_at = next((c.at_s for c in replies if c.cot == COT_ACTIVATION_TERMINATION), None)
        report = link.status.get(status_key) if status_key else None
        device_state = state_of(command.kind, report.value) if report is not None else ""
        value = float(report.value) if report is not None and isinstance(report.value, float) else None
        timing = {
            "sent_at_s": sent_at,
            "select_confirmed_at_s": select_at,
            "confirmed_at_s": confirmed_at,
            "terminated_at_s": terminated_at,
            "status_at_s": report.at_s if report is not None else None,
        }
        if done and status_key:
            return WireResult("completed", f"device reports {device_state}", device_state, value, **timing)
        if done:
            return WireResult("completed", "device confirmed and terminated the command", "", None, **timing)
        if status_key:
            shown = device_state or "no status"
            detail = f"device confirmed the command but reports {shown} after {timeout_s:.1f} s"
            return WireResult("timeout", detail, device_state, value, **timing)
        return WireResult("confirmed", "device confirmed; no termination reported", "", None, **timing)

    def read_state(
        self, host: str, port: int, common_address: int, status_ioa: int, kind: str, timeout_s: float
    ) -> str:
        """Return the device state from its status point (asking the RTU if nothing came yet); '' if unknown."""
        link = self.link(host, port)
        deadline = time.monotonic() + timeout_s
        if not link.ensure_open(deadline):
            return ""
        key = (common_address, status_ioa)
        point = link.status_point(common_address, status_ioa, plan_for(kind))
        if key not in link.status:
            if point is not None:
                link.ask(point)
            link.wait(lambda: key in link.status, deadline)
        report = link.status.get(key)
        return state_of(kind, report.value) if report is not None else ""

    def cached_state(self, host: str, port: int, common_address: int, status_ioa: int, kind: str) -> str:
        """Return the state last reported, without waiting: connect or ask in the background if needed."""
        link = self.link(host, port)
        link.start()
        link.status_point(common_address, status_ioa, plan_for(kind))
        report = link.status.get((common_address, status_ioa))
        return state_of(kind, report.value) if report is not None else ""

    def close(self) -> None:
        """Close every link and stop the client."""
        # Client.stop releases the GIL while it closes the connections; Connection.disconnect does not
        # and can deadlock with a callback arriving at that moment, so links are not closed one by one.
        with self.lock:
            self.links.clear()
        self.client.stop()


_pool: Iec104Pool | None = None
_pool_lock = threading.Lock()


def get_pool() -> Iec104Pool:
    """Return the process-wide pool, created on first use with the configured command timeout."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from django.conf import settings

            _pool = Iec104Pool(getattr(settings, "WAMS_CONTROL_COMMAND_TIMEOUT_MS", 5000))
        return _pool


def reset_pool() -> None:
    """Close the process-wide pool (tests, shutdown); the next use opens a new one."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()
