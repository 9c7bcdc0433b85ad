"""One device link: connect over the best path, configure, stream, watch, reconnect (no Django)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from typing import Protocol

from wams.pdc.align import timestamp_us_of
from wams.pdc.reports import LinkOptions, LinkReport, State
from wams.pdc.specs import PathSpec, PmuSpec, StreamSpec, order_paths
from wams.synchrophasor import C37118Error, ConfigFrame, DataFrame, PdcClient, encode_config

logger = logging.getLogger(__name__)

STAT_CONFIG_CHANGE = 0x0400  # STAT bit 10: the configuration will change (set for a minute before)
REFETCH_MIN_INTERVAL_S = 1.0
MIN_FRAME_BOUND = 4096  # bytes; frames up to this size are always accepted from a configured device


class LinkConsumer(Protocol):
    """Where a link delivers what it receives (the concentrator)."""

    def on_config(self, link: Link, config: ConfigFrame) -> None:
        """Take a newly adopted configuration (PMU mapping in `link.pmu_ids`)."""

    def on_frame(self, link: Link, arrival_s: float, timestamp_us: int, frame: DataFrame) -> None:
        """Take one data frame."""

    def on_state(self, link: Link) -> None:
        """Hear that the link changed state."""


def map_pmus(config: ConfigFrame, pmus: tuple[PmuSpec, ...]) -> list[PmuSpec | None]:
    """Return, per PMU block of the configuration, the model PMU it carries (None: not in the model)."""
    by_idcode = {p.idcode: p for p in pmus}
    mapped: list[PmuSpec | None] = [by_idcode.get(block.idcode) for block in config.pmus]
    if len(config.pmus) == 1 and len(pmus) == 1 and mapped[0] is None:
        mapped[0] = pmus[0]  # a single-PMU stream: the block is the PMU whatever its IDCODE
    return mapped


def bound_frame_size(client: PdcClient, config: ConfigFrame) -> None:
    """Make the client's frame reader refuse frames far larger than this stream sends.

    A corrupted byte run can look like a SYNC word followed by a huge FRAMESIZE; an unbounded reader
    would then hold every following frame until that many bytes arrived. Data frames have the
    configuration's size and configuration frames roughly their current one, so twice the larger
    (at least MIN_FRAME_BOUND) lets a grown configuration through and resynchronises at once.
    """
    try:
        config_size = len(encode_config(config))
    except C37118Error:
        return
    client.max_frame_size = min(max(2 * max(config.data_frame_size, config_size), MIN_FRAME_BOUND), 0xFFFF)


class Link:
    """Keep one stream connected: path choice with failover, configuration, START, reconnects."""

    def __init__(self, spec: StreamSpec, consumer: LinkConsumer, options: LinkOptions | None = None) -> None:
        self.spec = spec
        self.consumer = consumer
        self.options = options or LinkOptions()
        self.state = State.CONNECTING if spec.enabled else State.DISABLED
        self.path: PathSpec | None = None
        self.config: ConfigFrame | None = None
        self.pmus: list[PmuSpec | None] = []
        self.frames_received = 0
        self.frames_late = 0
        self.frames_rejected = 0  # decoded but refused downstream (e.g. implausible time stamp)
        self.gaps = 0
        self.reconnects = 0
        self.config_changes = 0
        self.last_error = ""
        self.last_arrival_s: float | None = None
        self._last_timestamp_us: int | None = None
        self._period_us = 0.0  # the reporting period, kept per configuration (read for every frame)
        self._client: PdcClient | None = None
        self._bad_closed = 0  # bad frames counted by clients of earlier sessions
        self._session_started_s = 0.0
        self._session_frames = 0
        self._has_streamed = False
        self._cfg3_offered: bool | None = None
        self._stat_change_seen = False
        self._mismatches_seen = 0
        self._refetch: asyncio.Task[None] | None = None
        self._last_refetch_s = 0.0
        self._closing: asyncio.Task[None] | None = None
        self._close_reason = ""
        self._path_errors: dict[int, str] = {}  # the failure last logged per path while down
        self._down_since_s = time.monotonic()  # since start or since the last streaming session ended
        self._down_reported = False
        self._interval_start_s = time.time()
        self._interval_frames = 0
        self._latency_sum_ms = 0.0
        self._latency_n = 0

    # properties ------------------------------------------------------------------------------
    @property
    def pmu_ids(self) -> list[int | None]:
        """Return the model PMU id of each PMU block of the adopted configuration."""
        return [None if p is None else p.id for p in self.pmus]

    @property
    def period_s(self) -> float:
        """Return the reporting period of the stream in seconds."""
        rate = self.config.rate_hz if self.config is not None and self.config.rate_hz > 0 else 0.0
        return 1.0 / (rate or float(self.spec.reporting_rate_fps) or 1.0)

    @property
    def frames_bad(self) -> int:
        """Return every frame or byte run rejected on this link so far."""
        client = self._client
        live = sum(client.rejected.values()) + client.frames_dropped if client is not None else 0
        return self._bad_closed + live + self.frames_rejected

    def _set_state(self, state: State) -> None:
        """Change state and tell the consumer."""
        if state != self.state:
            self.state = state
            self.consumer.on_state(self)

    def update_spec(self, spec: StreamSpec) -> None:
        """Take a spec whose connection is unchanged (new PMU list or names): remap without reconnecting."""
        self.spec = spec
        if self.config is not None:
            self._adopt(self.config)

    # running ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the stream connected until cancelled; a disabled stream only reports DISABLED."""
        if not self.spec.enabled:
            self._set_state(State.DISABLED)
            await asyncio.Event().wait()
        attempt = 0
        while True:
            streamed = False
            for path in order_paths(self.spec.paths, self.spec.path_policy):
                streamed = await self._try_path(path)
                if streamed:
                    break  # it streamed, then dropped: start again from the preferred path
            if streamed:
                attempt = 0
                continue
            if not self.spec.paths:
                self.last_error = "no enabled communication path"
            delay = min(self.options.backoff_max_s, self.options.backoff_base_s * 2**attempt)
            delay *= random.uniform(1 - self.options.backoff_jitter, 1 + self.options.backoff_jitter)
            attempt = min(attempt + 1, 16)
            self._set_state(State.BACKING_OFF)
            await asyncio.sleep(delay)

    async def _try_path(self, path: PathSpec) -> bool:
        """Run one session on `path`; return True if data flowed before it ended."""
        frames_before = self.frames_received
        try:
            await self._session(path)
        except (ConnectionError, OSError, TimeoutError, C37118Error) as exc:
            told = bool(self._close_reason)  # check() dropped it and said why
            reason = self._close_reason or f"{type(exc).__name__}: {exc}"
            self._close_reason = ""
            self.last_error = f"{path.name}: {reason}"[:300]
            self._log_failure(path, reason, streamed=self.frames_received > frames_before, told=told)
        if self.frames_received > frames_before:
            self._path_errors.clear()
            self._down_since_s = time.monotonic()
            return True
        return False

    def _log_failure(self, path: PathSpec, reason: str, *, streamed: bool, told: bool) -> None:
        """Log why a session ended: a lost stream at once; a link not up yet only once it has been down a while.

        While the devices start (or a device stays away) every retry of every path fails: those
        failures go to DEBUG until the link has been down `report_down_after_s`, then each path's
        failure is logged once (again only when its reason changes).
        """
        if streamed:
            level = logging.DEBUG if told else logging.INFO
            logger.log(level, "stream %s: lost, reconnecting: %s", self.spec.name, self.last_error)
            return
        down_s = time.monotonic() - self._down_since_s
        if down_s < self.options.report_down_after_s or self._path_errors.get(path.id) == reason:
            logger.debug("stream %s: %s", self.spec.name, self.last_error)
            return
        self._path_errors[path.id] = reason
        self._down_reported = True
        logger.warning("stream %s: no data for %.0f s; %s", self.spec.name, down_s, self.last_error)

    def _make_client(self, path: PathSpec) -> PdcClient:
        """Return a client for one path of this stream."""
        context: ssl.SSLContext | None = None
        if self.spec.tls:
            context = ssl.create_default_context(cafile=self.options.tls_ca_file or None)
        transport = path.transport if path.transport in ("tcp", "udp", "hybrid") else "tcp"
        return PdcClient(
            path.host,
            path.port,
            self.spec.idcode,
            transport=transport,  # type: ignore[arg-type]
            udp_port=path.udp_port or 0,
            ssl=context,
            server_hostname=path.host if context is not None else None,
            cfg_type=2,
            fetch_header=False,
            timeout_s=self.options.connect_timeout_s,
        )

    async def _session(self, path: PathSpec) -> None:
        """Connect on one path, configure, START and stream until the link drops."""
        self._session_frames = 0
        self.path = path
        self._set_state(State.CONNECTING)
        client = self._make_client(path)
        self._client = client
        self._session_started_s = time.time()
        self._mismatches_seen = 0
        try:
            config = await client.connect()
            self._set_state(State.CONFIGURING)
            if self.options.try_cfg3 and self._cfg3_offered is not False:
                config = await self._fetch_cfg3(client) or config
            self._adopt(config)
            await client.start()
            self._session_started_s = time.time()
            # Frames are handled as the client decodes them: no queue, no task switch per frame.
            client.sink = lambda arrival_s, frame: self._on_frame(client, arrival_s, frame)
            await client.wait_closed()
        finally:
            await self._end_session(client)

    async def _end_session(self, client: PdcClient) -> None:
        """Close the client (STOP, best effort) and keep its counters."""
        if self._refetch is not None:
            self._refetch.cancel()
            self._refetch = None
        with contextlib.suppress(Exception):
            await asyncio.shield(client.close())
        self._bad_closed += sum(client.rejected.values()) + client.frames_dropped
        if self._client is client:
            self._client = None

    async def _fetch_cfg3(self, client: PdcClient) -> ConfigFrame | None:
        """Ask for CFG-3 with a short timeout; remember whether the device offers it."""
        timeout = client.timeout_s
        client.timeout_s = self.options.cfg3_timeout_s
        try:
            config = await client.request_config(3)
        except TimeoutError:
            self._cfg3_offered = False
            return None
        finally:
            client.timeout_s = timeout
        self._cfg3_offered = True
        return config

    def _adopt(self, config: ConfigFrame) -> None:
        """Use `config` for this stream: map its PMU blocks to model PMUs and tell the consumer."""
        if self.config is not None and config is not self.config:
            old = [p.cfgcnt for p in self.config.pmus]
            new = [p.cfgcnt for p in config.pmus]
            if old != new or len(self.config.pmus) != len(config.pmus):
                self.config_changes += 1
                logger.info("stream %s: configuration changed (CFGCNT %s -> %s)", self.spec.name, old, new)
        self.config = config
        self.pmus = map_pmus(config, self.spec.pmus)
        self._period_us = self.period_s * 1e6
        if self._client is not None:
            bound_frame_size(self._client, config)
        if config.idcode != self.spec.idcode:
            logger.warning(
                "stream %s: configuration IDCODE %d, expected %d", self.spec.name, config.idcode, self.spec.idcode
            )
        self.consumer.on_config(self, config)

    def _on_frame(self, client: PdcClient, arrival_s: float, frame: DataFrame) -> None:
        """Count one data frame, watch its STAT words and hand it to the consumer."""
        if client.config is not None and client.config is not self.config:
            self._adopt(client.config)
        timestamp_us = timestamp_us_of(frame.soc, frame.fraction, frame.time_base)
        last = self._last_timestamp_us
        if last is not None and timestamp_us > last and self._period_us > 0:
            missed = round((timestamp_us - last) / self._period_us) - 1
            if missed > 0:
                self.gaps += missed
        if last is None or timestamp_us > last:
            self._last_timestamp_us = timestamp_us
        if self._session_frames == 0:
            if self._has_streamed:
                self.reconnects += 1  # streaming again after a loss
            self._has_streamed = True
            if self._down_reported:
                self._down_reported = False
                down_s = time.monotonic() - self._down_since_s
                path = self.path.name if self.path is not None else "?"
                logger.info("stream %s: streaming on %s after %.0f s without data", self.spec.name, path, down_s)
        self._session_frames += 1
        self.frames_received += 1
        self._interval_frames += 1
        self._latency_sum_ms += arrival_s * 1e3 - timestamp_us / 1e3
        self._latency_n += 1
        self.last_arrival_s = arrival_s
        if self.state is not State.STREAMING:
            self._set_state(State.STREAMING)
        change = any(block.stat & STAT_CONFIG_CHANGE for block in frame.pmus)
        if change != self._stat_change_seen:
            self._stat_change_seen = change  # re-read on both edges: announced, then effected
            self._request_refetch(client, "STAT configuration-change bit")
        self.consumer.on_frame(self, arrival_s, timestamp_us, frame)

    # configuration refresh -------------------------------------------------------------------
    def _request_refetch(self, client: PdcClient, reason: str) -> None:
        """Fetch the configuration again in the background (at most one at a time)."""
        now = time.time()
        if (
            self._refetch is not None and not self._refetch.done()
        ) or now - self._last_refetch_s < REFETCH_MIN_INTERVAL_S:
            return
        self._last_refetch_s = now
        logger.info("stream %s: fetching the configuration again (%s)", self.spec.name, reason)
        self._refetch = asyncio.get_running_loop().create_task(self._refetch_config(client))

    async def _refetch_config(self, client: PdcClient) -> None:
        """Ask for the configuration (CFG-3 when offered) and adopt it."""
        try:
            config = await client.request_config(3 if self._cfg3_offered else 2)
        except (ConnectionError, OSError, TimeoutError, C37118Error) as exc:
            logger.info("stream %s: configuration refresh failed: %s", self.spec.name, exc)
            return
        if self._client is client:
            self._adopt(config)

    # supervision -----------------------------------------------------------------------------
    def check(self, now_s: float) -> None:
        """Detect stale data and configuration mismatches; drop a silent connection (call ~10/s)."""
        client = self._client
        if client is None or self.state in (State.DISABLED, State.BACKING_OFF, State.CONNECTING):
            return
        mismatches = client.rejected.get("config_mismatch", 0)
        if mismatches > self._mismatches_seen:
            self._mismatches_seen = mismatches
            self._request_refetch(client, "data frames do not fit the configuration")
        since = now_s - max(self.last_arrival_s or 0.0, self._session_started_s)
        if self.state is State.STREAMING and since > self.options.stale_periods * self.period_s:
            self._set_state(State.STALE)
        silent = since > self.options.stale_reconnect_s and self.state in (State.STALE, State.CONFIGURING)
        if silent and (self._closing is None or self._closing.done()):
            self._close_reason = f"no data for {since:.1f} s"
            # A stream that went quiet is news; a device that accepts but never sends is told by _log_failure.
            level = logging.INFO if self.state is State.STALE else logging.DEBUG
            logger.log(level, "stream %s: %s, reconnecting", self.spec.name, self._close_reason)
            self._closing = asyncio.get_running_loop().create_task(client.close(send_stop=True))

    def report(self, now_s: float) -> LinkReport:
        """Return the statistics since the previous report and start a new interval."""
        elapsed = max(now_s - self._interval_start_s, 1e-6)
        rate = self._interval_frames / elapsed
        latency = self._latency_sum_ms / self._latency_n if self._latency_n else None
        self._interval_start_s = now_s
        self._interval_frames = 0
        self._latency_sum_ms = 0.0
        self._latency_n = 0
        return LinkReport(
            stream_id=self.spec.id,
            stream_name=self.spec.name,
            state=self.state.value,
            path_id=self.path.id if self.path is not None else None,
            path_name=self.path.name if self.path is not None else "",
            rate_fps=rate,
            latency_ms=latency,
            frames_received=self.frames_received,
            frames_bad=self.frames_bad,
            frames_late=self.frames_late,
            gaps=self.gaps,
            reconnects=self.reconnects,
            last_frame_at_s=self.last_arrival_s,
            last_error=self.last_error,
        )
