"""Concentrated C37.118 output: aligned snapshots of a set of PMUs served as one stream (no Django).

The configuration (CFG-1/2/3) is generated from the model: one PMU block per member PMU, floating
point polar phasors in the model's channel order, floating point analogs, and frequency as the
16-bit deviation from nominal in mHz (ROCOF in 0.01 Hz/s), the form every peer reads. Snapshots
feed it at the members' reporting rate; an output at a lower rate is decimated behind the
anti-alias filter of `wams.pdc.resample`. A member missing at an instant is sent with NaN values
and STAT data error 2 ("absent data inserted by a PDC").
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wams.pdc.accumulate import Measured
from wams.pdc.align import US_PER_S, Snapshot, on_grid
from wams.pdc.resample import StreamingDecimator
from wams.pdc.specs import OutputPmuSpec, OutputSpec
from wams.synchrophasor import (
    AnalogChannel,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    PmuServer,
)
from wams.synchrophasor.frames import Command

logger = logging.getLogger(__name__)

STAT_ABSENT = 0x8000  # data error 2: absent data inserted by a PDC, do not use the values
QUEUE_SECONDS = 1.0  # frames held for the server; older ones are dropped when nobody reads


def config_count(spec: OutputSpec) -> int:
    """Return a CFGCNT that changes whenever the generated configuration changes."""
    return zlib.crc32(repr((spec.idcode, spec.reporting_rate_fps, spec.pmus)).encode()) & 0xFFFF


def _pmu_config(pmu: OutputPmuSpec, cfgcnt: int, with_location: bool) -> PmuConfig:
    """Return the PMU block configuration of one member."""
    config = PmuConfig(
        station_name=pmu.station_name[:16],
        idcode=pmu.idcode,
        phasor_float=True,
        polar=True,
        freq_float=False,
        analog_float=True,
        phasors=[PhasorChannel(ch.name[:16], "A" if ch.kind == "A" else "V") for ch in pmu.phasors],
        analogs=[AnalogChannel(ch.name[:16], kind=1) for ch in pmu.analogs],
        digitals=[DigitalWord(names=[f"{ch.name[:13]}.{b}" for b in range(16)]) for ch in pmu.digitals],
        nominal_hz=pmu.nominal_hz,
        cfgcnt=cfgcnt,
    )
    if with_location:
        config.latitude_deg = pmu.latitude_deg
        config.longitude_deg = pmu.longitude_deg
    return config


def output_config(spec: OutputSpec, cfg_type: int = 2) -> ConfigFrame:
    """Return the CFG-2 (or CFG-3) of an output stream generated from its spec."""
    cfgcnt = config_count(spec)
    return ConfigFrame(
        idcode=spec.idcode,
        time_base=US_PER_S,
        data_rate=spec.reporting_rate_fps,
        pmus=[_pmu_config(p, cfgcnt, with_location=cfg_type == 3) for p in spec.pmus],
        version=2 if cfg_type == 3 else 1,
        cfg_type=cfg_type,
    )


@dataclass(slots=True)
class _Instant:
    """What an input instant carried besides filtered values: presence, STAT and digital words."""

    present: list[bool]
    stat: list[int]
    digitals: list[list[int]]


class _FrameSource:
    """The server's data source: hands out queued frames, waiting when there are none."""

    def __init__(self, limit: int) -> None:
        self.frames: deque[DataFrame] = deque(maxlen=limit)
        self.ready = asyncio.Event()
        self.dropped = 0

    def put(self, frame: DataFrame) -> None:
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(frame)
        self.ready.set()

    def clear(self) -> None:
        self.frames.clear()

    def __aiter__(self) -> _FrameSource:
        return self

    async def __anext__(self) -> DataFrame:
        while not self.frames:
            self.ready.clear()
            await self.ready.wait()
        return self.frames.popleft()


class OutputServer:
    """Serve one output stream; feed it every released snapshot with `feed`."""

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.config = output_config(spec, 2)
        self.cfg3 = output_config(spec, 3)
        self.in_rate = max((p.input_rate_fps for p in spec.pmus), default=spec.reporting_rate_fps)
        out_rate = spec.reporting_rate_fps
        if self.in_rate % out_rate:
            logger.warning(
                "output %s: %d fps is not an integer fraction of the input %d fps; sending matching instants",
                spec.name,
                out_rate,
                self.in_rate,
            )
            self.factor = 1
        else:
            self.factor = max(self.in_rate // out_rate, 1)
        self._sizes = [(len(p.phasors), len(p.analogs), len(p.digitals)) for p in spec.pmus]
        n_channels = sum(n_ph + 2 + n_an for n_ph, n_an, _ in self._sizes)
        self._decimator = StreamingDecimator(self.factor, n_channels) if self.factor > 1 else None
        self._held = [self._nan_vector(i) for i in range(len(spec.pmus))]
        self._instants: dict[int, _Instant] = {}
        self._source = _FrameSource(max(2, round(QUEUE_SECONDS * out_rate)))
        self.server: PmuServer | None = None
        self.ports: dict[str, int] = {}
        self.frames_out = 0

    def _nan_vector(self, i: int) -> npt.NDArray[np.complex128]:
        """Return the filter input of member i when nothing is known yet."""
        n_ph, n_an, _ = self._sizes[i]
        return np.full(n_ph + 2 + n_an, np.nan, dtype=np.complex128)

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> dict[str, int]:
        """Open the listening socket; return the bound ports."""
        header = f"WAMS output {self.spec.name}: {len(self.spec.pmus)} PMUs at {self.spec.reporting_rate_fps} fps"
        self.server = PmuServer(
            self.config,
            self._source,
            header=header,
            host=self.spec.host,
            port=self.spec.port,
            mode="tcp",
            align_to_wall_clock=False,
            keep_timestamps=True,
            cfg3=self.cfg3,
            on_command=self._on_command,
        )
        self.ports = await self.server.start()
        logger.info("output %s listening on %s:%s", self.spec.name, self.spec.host, self.ports.get("tcp"))
        return self.ports

    async def stop(self) -> None:
        """Close the server and its connections."""
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def _on_command(self, frame: CommandFrame, peer: Any) -> None:
        """Start a new subscriber on fresh data rather than on a backlog."""
        if int(frame.command) == Command.START:
            self._source.clear()

    # data ------------------------------------------------------------------------------------
    def feed(self, snapshot: Snapshot[Measured]) -> None:
        """Take one aligned snapshot; queue the output frames it completes."""
        t_us = snapshot.timestamp_us
        index = (t_us * self.in_rate + US_PER_S // 2) // US_PER_S
        if (index * US_PER_S + self.in_rate // 2) // self.in_rate != t_us:
            return  # off the input grid (a stray time stamp): not an output instant
        present, stat, digitals = [], [], []
        vectors = []
        for i, pmu in enumerate(self.spec.pmus):
            sample = snapshot.samples.get(pmu.id)
            if sample is None:
                present.append(False)
                stat.append(STAT_ABSENT)
                digitals.append([0] * self._sizes[i][2])
                vectors.append(self._held[i])
                continue
            vector = self._vector(i, sample)
            self._held[i] = vector
            present.append(True)
            stat.append(int(sample.stat))
            digitals.append(self._digitals(i, sample))
            vectors.append(vector)
        instant = _Instant(present, stat, digitals)
        if self._decimator is None:
            if on_grid(t_us, self.spec.reporting_rate_fps):
                self._emit(index, np.concatenate(vectors) if vectors else np.zeros(0, np.complex128), instant)
            return
        self._instants[index] = instant
        for out_index, values in self._decimator.push(index, np.concatenate(vectors)):
            self._emit(out_index, np.asarray(values, dtype=np.complex128), self._instants.get(out_index))
        horizon = index - self._decimator.n_taps - self.factor
        for old in [k for k in self._instants if k < horizon]:
            del self._instants[old]

    def _vector(self, i: int, sample: Measured) -> npt.NDArray[np.complex128]:
        """Return member i's filter input: phasors, frequency, ROCOF, analogs (model channel counts)."""
        n_ph, n_an, _ = self._sizes[i]
        vector = np.full(n_ph + 2 + n_an, np.nan, dtype=np.complex128)
        phasors = sample.phasors[:n_ph]
        vector[: len(phasors)] = phasors
        vector[n_ph] = sample.frequency_hz
        vector[n_ph + 1] = sample.rocof_hz_per_s
        analogs = sample.analogs[:n_an]
        vector[n_ph + 2 : n_ph + 2 + len(analogs)] = analogs
        return vector

    def _digitals(self, i: int, sample: Measured) -> list[int]:
        """Return member i's digital words padded to the model's count."""
        n_dg = self._sizes[i][2]
        words = [int(w) for w in list(sample.digitals)[:n_dg]]
        return words + [0] * (n_dg - len(words))

    def _emit(self, index: int, values: npt.NDArray[np.complex128], instant: _Instant | None) -> None:
        """Queue the output frame of input instant `index`."""
        t_us = (index * US_PER_S + self.in_rate // 2) // self.in_rate
        blocks: list[PmuData] = []
        offset = 0
        for i, (n_ph, n_an, n_dg) in enumerate(self._sizes):
            part = values[offset : offset + n_ph + 2 + n_an]
            offset += n_ph + 2 + n_an
            here = instant is not None and instant.present[i]
            if not here:
                part = np.full_like(part, np.nan)
            blocks.append(
                PmuData(
                    stat=instant.stat[i] if instant is not None and here else STAT_ABSENT,
                    phasors=np.asarray(part[:n_ph], dtype=np.complex128),
                    frequency_hz=float(part[n_ph].real),
                    rocof_hz_per_s=float(part[n_ph + 1].real),
                    analogs=np.asarray(part[n_ph + 2 :].real, dtype=np.float64),
                    digitals=instant.digitals[i] if instant is not None and here else [0] * n_dg,
                )
            )
        soc, micros = divmod(t_us, US_PER_S)
        self._source.put(DataFrame(self.spec.idcode, soc, micros, blocks, US_PER_S))
        self.frames_out += 1

    def queued_frames(self) -> list[DataFrame]:
        """Return the frames waiting for the server (oldest first), without taking them."""
        return list(self._source.frames)

    @property
    def frames_dropped(self) -> int:
        """Return frames dropped because nobody read them in time."""
        return self._source.dropped
