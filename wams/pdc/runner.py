"""The pdc's top-level coroutine: owns every device link of its shard until told to stop.

`run_pdc(stop, shard, shards)` builds a `Concentrator` from the settings and runs it. The
concentrator polls the grid model every couple of seconds (links started, restarted, remapped or
stopped to match it, so admin changes and operators' on/off switches need no restart), releases
aligned snapshots continuously, publishes live updates at WAMS_PDC_LIVE_PUBLISH_HZ, writes LinkState rows
about once a second, serves the output streams and hands SampleBlocks to the historian.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from wams import live
from wams.memory import trim_periodically
from wams.pdc.concentrator import DataPath, DataPathOptions
from wams.pdc.link import Link
from wams.pdc.output import OutputServer
from wams.pdc.reports import LinkOptions, LinkReport, LinkSummary, State, link_payload
from wams.pdc.sink import BlockSink, HistorianSink, SinkQueue
from wams.pdc.specs import OutputSpec, StreamSpec

logger = logging.getLogger(__name__)

T = TypeVar("T")
SpecLoader = Callable[[int, int], Awaitable[list[StreamSpec]]]
OutputLoader = Callable[[int, int], Awaitable[list[OutputSpec]]]
StateWriter = Callable[[list[LinkReport], int], Awaitable[object]]
Publisher = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PdcOptions:
    """Everything that tunes a pdc process."""

    data: DataPathOptions = field(default_factory=DataPathOptions)
    link: LinkOptions = field(default_factory=LinkOptions)
    live_rate_hz: float = 10.0
    recent_push_s: float = 0.5  # pushes the blocks handed over meanwhile (none between block cuts)
    model_poll_s: float = 2.0
    state_write_s: float = 1.0
    release_tick_max_s: float = 0.05
    check_tick_s: float = 0.1
    summary_s: float = 5.0  # the link count is logged this often while links come up (LinkSummary)
    shutdown_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls) -> PdcOptions:
        """Return the options configured in Django settings."""
        from django.conf import settings

        return cls(
            data=DataPathOptions(
                wait_time_ms=settings.WAMS_PDC_WAIT_TIME_MS,
                block_seconds=float(settings.WAMS_PDC_BLOCK_SECONDS),
            ),
            link=replace(LinkOptions(), tls_ca_file=settings.WAMS_PDC_TLS_CA_FILE),
            live_rate_hz=settings.WAMS_PDC_LIVE_PUBLISH_HZ,
        )


def _in_db_thread(func: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Wrap a sync database function for the event loop, dropping broken connections around it."""
    from asgiref.sync import sync_to_async
    from django.db import close_old_connections

    def call(*args: Any) -> T:
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=True)


async def close_db_connections() -> None:
    """Close the database connections of the thread the adapters run in (clean shutdown)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


def default_adapters() -> tuple[SpecLoader, OutputLoader, StateWriter]:
    """Return the database adapters of wams.pdc.services."""
    from wams.pdc import services

    return (
        _in_db_thread(services.load_stream_specs),
        _in_db_thread(services.load_output_specs),
        _in_db_thread(services.write_link_states),
    )


class Concentrator:
    """One pdc process's links, data path, live feed, link states and outputs."""

    def __init__(
        self,
        shard: int = 0,
        shards: int = 1,
        options: PdcOptions | None = None,
        *,
        sink: BlockSink | None = None,
        load_specs: SpecLoader | None = None,
        load_outputs: OutputLoader | None = None,
        write_states: StateWriter | None = None,
        publish: Publisher | None = None,
    ) -> None:
        self.shard = shard
        self.shards = shards
        self.options = options or PdcOptions()
        self._uses_database = load_specs is None or load_outputs is None or write_states is None
        if load_specs is None or load_outputs is None or write_states is None:
            db_specs, db_outputs, db_states = default_adapters()
            load_specs = load_specs or db_specs
            load_outputs = load_outputs or db_outputs
            write_states = write_states or db_states
        self.load_specs: SpecLoader = load_specs
        self.load_outputs: OutputLoader = load_outputs
        self.write_states: StateWriter = write_states
        self.publish: Publisher = publish or live.apublish
        self.sink = SinkQueue(sink or HistorianSink())
        self.data = DataPath(self.options.data, self.sink.put)
        self.links: dict[int, Link] = {}
        self.link_tasks: dict[int, asyncio.Task[None]] = {}
        self.outputs: dict[int, OutputServer] = self.data.outputs
        self.output_specs: dict[int, OutputSpec] = {}
        self.model_loaded = asyncio.Event()
        self.summary = LinkSummary(time.monotonic(), self.options.summary_s)

    # lifecycle -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down cleanly."""
        loops = [
            self._every(self.options.model_poll_s, self.refresh_model, "model poll"),
            self._release_loop(),
            self._every(self.options.check_tick_s, self._check_links, "link check"),
            self._every(1.0 / self.options.live_rate_hz, self.publish_live, "live update"),
            self._every(self.options.recent_push_s, self.push_recent, "recent window"),
            self._every(self.options.state_write_s, self.write_link_states, "link states"),
            self._every(1.0, self.log_link_summary, "link summary"),
            self.sink.run(),
        ]
        tasks = [asyncio.create_task(coro) for coro in loops]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.shutdown()

    async def _every(self, period_s: float, work: Callable[[], Awaitable[object] | object], name: str) -> None:
        """Run `work` every `period_s` seconds, logging (not raising) its failures."""
        while True:
            started = time.monotonic()
            try:
                result = work()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("pdc: %s failed", name)
            await asyncio.sleep(max(period_s - (time.monotonic() - started), 0.0))

    async def shutdown(self) -> None:
        """Stop links and outputs, flush everything aligned and hand every block over."""
        final = [
            r if r.state == State.DISABLED.value else replace(r, state=State.STALE.value, last_error="pdc stopped")
            for r in self._reports()
        ]
        await asyncio.gather(*(self._stop_link(stream_id) for stream_id in list(self.links)))
        for output_id in list(self.outputs):
            await self._stop_output(output_id)
        self.data.flush(time.time())
        await self.sink.drain(self.options.shutdown_timeout_s)
        with contextlib.suppress(Exception):
            await self.publish_live()
            await self.push_recent()
        try:
            await self.write_states(final, self.shard)
        except Exception:
            logger.exception("pdc: could not write the final link states")
        if self._uses_database:
            await close_db_connections()

    # model -----------------------------------------------------------------------------------
    async def refresh_model(self) -> None:
        """Read the grid model and bring links and outputs in line with it."""
        specs = await self.load_specs(self.shard, self.shards)
        self.apply_specs(specs)
        outputs = await self.load_outputs(self.shard, self.shards)
        await self.apply_outputs(outputs)
        self.model_loaded.set()

    def apply_specs(self, specs: list[StreamSpec]) -> None:
        """Start, restart, remap or stop links to match `specs`."""
        wanted = {spec.id: spec for spec in specs}
        for stream_id in [s for s in self.links if s not in wanted]:
            self._cancel_link(stream_id)
        for spec in specs:
            link = self.links.get(spec.id)
            if link is None:
                self._start_link(spec)
            elif link.spec.connection != spec.connection:
                logger.info("pdc: stream %s changed, restarting its link", spec.name)
                self._cancel_link(spec.id)
                self._start_link(spec)
            elif link.spec != spec:
                link.update_spec(spec)
        self.data.set_streams(specs)

    def _start_link(self, spec: StreamSpec) -> None:
        """Create and start the link of one stream."""
        link = Link(spec, self.data, self.options.link)
        self.links[spec.id] = link
        self.link_tasks[spec.id] = asyncio.get_running_loop().create_task(link.run(), name=f"link {spec.name}")

    def _cancel_link(self, stream_id: int) -> None:
        """Stop a link in the background (its session closes with STOP)."""
        self.links.pop(stream_id, None)
        task = self.link_tasks.pop(stream_id, None)
        if task is not None:
            task.cancel()
        self.data.forget_link(stream_id)

    async def _stop_link(self, stream_id: int) -> None:
        """Stop a link and wait for it to close."""
        task = self.link_tasks.get(stream_id)
        self._cancel_link(stream_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 3.0)

    async def apply_outputs(self, specs: list[OutputSpec]) -> None:
        """Start, restart or stop output servers to match `specs`."""
        wanted = {spec.id: spec for spec in specs}
        for output_id in [o for o in self.output_specs if wanted.get(o) != self.output_specs[o]]:
            await self._stop_output(output_id)
        for spec in specs:
            if spec.id in self.output_specs:
                continue
            server = OutputServer(spec)
            try:
                await server.start()
            except OSError as exc:
                logger.error("output %s cannot listen on %s:%d: %s", spec.name, spec.host, spec.port, exc)
                continue
            self.outputs[spec.id] = server
            self.output_specs[spec.id] = spec

    async def _stop_output(self, output_id: int) -> None:
        """Stop one output server."""
        self.output_specs.pop(output_id, None)
        server = self.outputs.pop(output_id, None)
        if server is not None:
            await server.stop()

    # periodic work ---------------------------------------------------------------------------
    async def _release_loop(self) -> None:
        """Release snapshots as their wait time runs out, sleeping until the next deadline."""
        wait_s = self.options.data.wait_time_ms / 1000.0
        idle_s = min(self.options.release_tick_max_s, max(wait_s / 4, 0.001))
        while True:
            now = time.time()
            try:
                self.data.release(now)
            except Exception:
                logger.exception("pdc: release failed")
            deadline = self.data.aligner.next_deadline_s()
            sleep_s = idle_s if deadline is None else min(max(deadline - now, 0.001), idle_s)
            await asyncio.sleep(sleep_s)

    def _check_links(self) -> None:
        """Watch links for stale data; cut the blocks of PMUs that went quiet."""
        now = time.time()
        for link in list(self.links.values()):
            link.check(now)
        self.data.cut_idle(now)

    async def publish_live(self) -> None:
        """Send the live snapshot update."""
        payload = self.data.live.take_payload(time.time())
        if payload is not None:
            await self.publish(live.GROUP_SNAPSHOTS, live.EVENT_SNAPSHOT, payload)

    async def push_recent(self) -> None:
        """Push the blocks handed over since the last push to the historian's recent window."""
        recent = self.data.take_recent()
        if recent:
            try:
                await self.sink.sink.push_recent(recent)
            except Exception as exc:  # noqa: BLE001 - the recent window is best effort
                logger.warning("pdc: recent window push failed: %s", exc)

    def log_link_summary(self) -> None:
        """Log how many links stream, when LinkSummary says it is news."""
        line = self.summary.update([link.state for link in self.links.values()], time.monotonic())
        if line is not None:
            where = "pdc" if self.shards == 1 else f"pdc shard {self.shard}/{self.shards}"
            logger.info("%s: %s", where, line)

    def _reports(self) -> list[LinkReport]:
        """Return every link's report for the interval now ending."""
        now = time.time()
        return [link.report(now) for link in self.links.values()]

    async def write_link_states(self) -> None:
        """Write LinkState rows and publish EVENT_LINK for every link."""
        reports = self._reports()
        if not reports:
            return
        await self.write_states(reports, self.shard)
        for report in reports:
            await self.publish(live.GROUP_LINKS, live.EVENT_LINK, link_payload(report))


def freeze_startup_objects() -> None:
    """Exempt everything allocated so far (modules, settings, model) from future garbage collections.

    A full collection walks every tracked object; in a pdc most of them are the start-up objects
    of Django and numpy, which live as long as the process. Frozen, they no longer stretch each
    full collection (long stalls of the event loop make samples late).
    """
    gc.collect()
    gc.freeze()


def run_event_loop(main: Coroutine[Any, Any, T], event_loop: str = "asyncio") -> T:
    """Run `main` to completion on a new event loop of the kind named ("uvloop" or "asyncio")."""
    if event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    if event_loop != "asyncio":
        raise ValueError(f"unknown event loop {event_loop!r}: use uvloop or asyncio")
    return asyncio.run(main)


async def run_pdc(stop: asyncio.Event, shard: int = 0, shards: int = 1) -> None:
    """Run the links of one shard until `stop` is set."""
    from wams.pdc.hooks import run_startup

    logger.info("pdc shard %d/%d started", shard, shards)
    run_startup()  # apps plug in here, e.g. detection's fast detectors on every aligned snapshot
    freeze_startup_objects()
    concentrator = Concentrator(shard, shards, PdcOptions.from_settings())
    trimmer = asyncio.create_task(trim_periodically(stop))  # hand freed malloc pages back (wams.memory)
    try:
        await concentrator.run(stop)
    finally:
        trimmer.cancel()
        await asyncio.gather(trimmer, return_exceptions=True)
    logger.info("pdc shard %d/%d stopped", shard, shards)
