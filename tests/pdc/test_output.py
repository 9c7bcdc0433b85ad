"""The concentrated output stream: configuration from the model, decimation, absent PMUs, pyPMU as a peer."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import logging
import math
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from tests.pdc.fleet import BASE_V, measurements, pmu_block, start_pmu, stream_config, wait_for
from tests.pdc.grid import provision
from tests.pdc.test_runner import OPTIONS, Published, run_with
from wams.pdc.align import Snapshot
from wams.pdc.models import OutputStream
from wams.pdc.output import STAT_ABSENT, OutputServer, output_config
from wams.pdc.runner import Concentrator
from wams.pdc.sink import MemorySink
from wams.pdc.specs import OutputChannelSpec, OutputPmuSpec, OutputSpec
from wams.synchrophasor import PmuData, decode_frame, encode_cfg3_fragments, encode_frame
from wams.synchrophasor.decode import Cfg3Assembler

T0_US = 1_700_000_000 * 1_000_000


def member(pmu_id: int, idcode: int, n_phasors: int = 2) -> OutputPmuSpec:
    phasors = (OutputChannelSpec("V1", "V"), *(OutputChannelSpec(f"I{k}", "A") for k in range(1, n_phasors)))
    return OutputPmuSpec(
        id=pmu_id, idcode=idcode, station_name=f"ST{idcode}", phasors=phasors, latitude_deg=42.5, longitude_deg=-71.25
    )


def spec(rate_fps: int) -> OutputSpec:
    return OutputSpec(
        id=1, name="out", idcode=4000, host="127.0.0.1", port=0, reporting_rate_fps=rate_fps,
        pmus=(member(11, 101), member(12, 102)),
    )  # fmt: skip


def sample(angle_deg: float, frequency_hz: float = 60.0) -> PmuData:
    return PmuData(
        stat=0,
        phasors=np.array([BASE_V * np.exp(1j * math.radians(angle_deg)), 50.0 + 0j]),
        frequency_hz=frequency_hz,
        rocof_hz_per_s=0.0,
        digitals=[],
    )


def instant_us(k: int) -> int:
    return T0_US + (k // 30) * 1_000_000 + ((k % 30) * 1_000_000 + 15) // 30


def test_generated_configuration_round_trips_through_the_codec_cfg2_and_cfg3() -> None:
    cfg2 = output_config(spec(10), 2)
    decoded = decode_frame(encode_frame(cfg2))
    assert [p.station_name for p in decoded.pmus] == ["ST101", "ST102"]  # type: ignore[union-attr]
    assert [p.idcode for p in decoded.pmus] == [101, 102]  # type: ignore[union-attr]
    assert decoded.data_rate == 10 and decoded.idcode == 4000  # type: ignore[union-attr]
    assert [ch.kind for ch in decoded.pmus[0].phasors] == ["V", "A"]  # type: ignore[union-attr]
    assembler = Cfg3Assembler()
    cfg3 = None
    for raw in encode_cfg3_fragments(output_config(spec(10), 3)):
        cfg3 = assembler.feed(raw)
    assert cfg3 is not None
    np.testing.assert_allclose(cfg3.pmus[0].latitude_deg, 42.5)
    assert cfg3.pmus[0].cfgcnt == cfg2.pmus[0].cfgcnt


def test_same_rate_output_passes_each_snapshot_and_marks_absent_pmus() -> None:
    output = OutputServer(spec(30))
    for k in range(3):
        samples = {11: sample(10.0)} if k == 1 else {11: sample(10.0), 12: sample(-5.0)}
        output.feed(Snapshot(instant_us(k), samples, (), 0.0, 0.0))  # type: ignore[arg-type]
    frames = output.queued_frames()
    assert [f.soc * 1_000_000 + f.fraction for f in frames] == [instant_us(k) for k in range(3)]
    absent = frames[1].pmus[1]
    assert absent.stat == STAT_ABSENT and math.isnan(absent.frequency_hz)
    np.testing.assert_allclose(np.angle(frames[0].pmus[1].phasors[0], deg=True), -5.0, atol=1e-9)


def test_lower_rate_output_is_decimated_on_its_own_instants_with_true_values() -> None:
    output = OutputServer(spec(10))
    assert output.factor == 3
    for k in range(150):  # 5 s at 30 fps; PMU 12 ramps its angle slowly (0.6 deg/s)
        t = instant_us(k)
        output.feed(Snapshot(t, {11: sample(10.0), 12: sample(0.02 * k)}, (), 0.0, 0.0))  # type: ignore[arg-type]
    frames = output.queued_frames()  # the newest second: older frames nobody read were dropped
    stamps = np.array([f.soc * 1_000_000 + f.fraction for f in frames])
    assert len(frames) == 10 and output.frames_out >= 40  # 50 output instants less the filter delay
    np.testing.assert_array_equal(stamps % 100_000, 0)  # 10 fps instants
    np.testing.assert_array_equal(np.diff(stamps), 100_000)
    last = frames[-1]
    k_last = round((stamps[-1] - T0_US) * 30 / 1_000_000)
    np.testing.assert_allclose(np.angle(last.pmus[1].phasors[0], deg=True), 0.02 * k_last, atol=1e-3)
    np.testing.assert_allclose(abs(last.pmus[0].phasors[0]), BASE_V, rtol=1e-6)
    np.testing.assert_allclose(last.pmus[0].frequency_hz, 60.0, atol=1e-9)
    decoded = decode_frame(encode_frame(last, output.config), output.config)
    np.testing.assert_allclose(decoded.pmus[0].frequency_hz, 60.0, atol=1e-3)  # type: ignore[union-attr]


def pypmu_session(port: int, idcode: int, n_frames: int) -> tuple[Any, Any, list[Any]]:
    """Connect pyPMU's PDC to the output, read its header, CFG-2 and some data frames."""
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]  # pyPMU on Python 3.10+
    from synchrophasor.pdc import Pdc

    pdc = Pdc(pdc_id=idcode, pmu_ip="127.0.0.1", pmu_port=port)
    pdc.logger.setLevel(logging.WARNING)
    pdc.run()
    pdc.pmu_socket.settimeout(10)
    try:
        header = pdc.get_header()
        config = pdc.get_config()
        pdc.start()
        frames = [pdc.get() for _ in range(n_frames)]
        pdc.stop()
    finally:
        pdc.quit()
    return header, config, frames


@pytest.mark.django_db(transaction=True)
def test_pypmu_pdc_reads_the_concentrated_output_stream() -> None:
    config_a = stream_config(901, [pmu_block(901, "A")])
    config_b = stream_config(902, [pmu_block(902, "B")])

    async def scenario() -> tuple[Any, Any, list[Any], list[int]]:
        server_a = await start_pmu(config_a, lambda soc, fr: measurements(config_a, 1.01, -20.0))

        def source_b(soc: int, fraction: int) -> list[PmuData]:
            data = measurements(config_b, 0.99, 15.0)
            data[0].frequency_hz = 59.987
            return data

        server_b = await start_pmu(config_b, source_b)
        _, pmu_a = await sync_to_async(provision)(server_a.ports["tcp"], 901)
        _, pmu_b = await sync_to_async(provision)(server_b.ports["tcp"], 902)

        def make_output() -> OutputStream:
            output = OutputStream.objects.create(
                name="to TSO", idcode=4100, host="127.0.0.1", port=0, reporting_rate_fps=10
            )
            output.pmus.set([pmu_a, pmu_b])
            return output

        await sync_to_async(make_output)()
        concentrator = Concentrator(options=OPTIONS, sink=MemorySink(), publish=Published())
        result: list[Any] = []

        async def body() -> None:
            assert await wait_for(lambda: bool(concentrator.outputs), 5)
            (output,) = concentrator.outputs.values()
            port = output.ports["tcp"]
            result.extend(await asyncio.to_thread(pypmu_session, port, 4100, 20))

        try:
            await run_with(concentrator, body)
        finally:
            await server_a.stop()
            await server_b.stop()
        return result[0], result[1], result[2], [pmu_a.idcode, pmu_b.idcode]

    header, config, frames, idcodes = asyncio.run(scenario())
    assert "to TSO" in header.get_header()
    assert config.get_num_pmu() == 2
    assert list(config.get_stream_id_code()) == idcodes
    assert config.get_data_rate() == 10
    # pyPMU's PDC reads one recv() per frame and drops both when two frames arrive together, so
    # not every read yields a frame; each one it does decode must be right.
    decoded = [f.get_measurements() for f in frames if f is not None]
    assert len(decoded) >= 5
    times = np.array([d["time"] for d in decoded])
    np.testing.assert_allclose(np.round(times * 10) / 10, times, atol=1e-6)  # on the 10 fps grid
    assert np.all(np.diff(times) > 0.09)
    present = [d for d in decoded if d["measurements"][0]["stat"] == "ok" and d["measurements"][1]["stat"] == "ok"]
    assert present
    magnitude_a, angle_a = present[-1]["measurements"][0]["phasors"][0]
    magnitude_b, angle_b = present[-1]["measurements"][1]["phasors"][0]
    np.testing.assert_allclose(magnitude_a, 1.01 * BASE_V, rtol=1e-4)
    np.testing.assert_allclose(magnitude_b, 0.99 * BASE_V, rtol=1e-4)
    np.testing.assert_allclose(math.degrees(angle_a), -20.0, atol=0.01)
    np.testing.assert_allclose(math.degrees(angle_b), 15.0, atol=0.01)
    np.testing.assert_allclose(present[-1]["measurements"][1]["frequency"], 59.987, atol=0.0015)  # mHz resolution
