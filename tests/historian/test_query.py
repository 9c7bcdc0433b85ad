"""Queries by PMU, channel and window: chunks merged with the recent window, decimation for plots."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.conftest import make_pmu
from tests.historian.helpers import T0, T0_US, make_block
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import datetime_from_us
from wams.historian.query import Trace, channel_names, decimate, parse_channel, query_traces, read_samples
from wams.historian.recent import push_recent
from wams.historian.services import ingest


def _ramp_block(pmu_id: int, n: int = 1000, fps: int = 10) -> object:
    block = make_block(pmu_id, n=n, fps=fps, n_phasors=1)
    block.frequency_hz = np.arange(n, dtype=np.float64)  # sample i has value i
    return block


def test_decimation_of_a_ramp_gives_known_min_max_mean() -> None:
    timestamp_us = T0_US + np.arange(1000, dtype=np.int64) * 100_000  # 10 fps for 100 s
    values = np.arange(1000, dtype=np.float64)
    times, mean, minimum, maximum, count, width = decimate(timestamp_us, values, T0_US, T0_US + 99_999_999, 10)
    assert width == 10_000_000
    np.testing.assert_array_equal(minimum, np.arange(10) * 100)
    np.testing.assert_array_equal(maximum, np.arange(10) * 100 + 99)
    np.testing.assert_allclose(mean, np.arange(10) * 100 + 49.5, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(count, np.full(10, 100))
    np.testing.assert_array_equal(times, T0_US + np.arange(10) * 10_000_000 + 4_950_000)


def test_decimation_ignores_nan_and_leaves_out_empty_buckets() -> None:
    timestamp_us = np.array([0, 1, 2, 30, 31], dtype=np.int64)
    values = np.array([1.0, np.nan, 3.0, np.nan, np.nan])
    times, mean, minimum, maximum, count, width = decimate(timestamp_us, values, 0, 39, 4)
    np.testing.assert_array_equal(times, [1, 30])
    assert width == 10
    np.testing.assert_array_equal(count, [3, 2])
    np.testing.assert_array_equal(minimum[:1], [1.0])
    np.testing.assert_array_equal(maximum[:1], [3.0])
    np.testing.assert_allclose(mean[:1], [2.0])
    assert np.isnan(mean[1]) and np.isnan(minimum[1]) and np.isnan(maximum[1])


def test_channel_names_parse_and_list() -> None:
    assert parse_channel("phasor_3_angle_deg").index == 3
    assert parse_channel("digital_1").kind == "digital"
    assert channel_names(1, 1, 1) == [
        "frequency_hz",
        "rocof_hz_per_s",
        "stat",
        "phasor_0_magnitude",
        "phasor_0_angle_deg",
        "analog_0",
        "digital_0",
    ]
    with pytest.raises(ValueError, match="unknown channel"):
        parse_channel("voltage")


@pytest.mark.django_db
def test_decimated_query_of_stored_ramp_has_known_buckets() -> None:
    pmu = make_pmu()
    for first in range(0, 1000, 50):  # 5 s blocks at 10 fps
        block = _ramp_block(pmu.pk)
        ingest(codec.take_samples(block, slice(first, first + 50)))  # type: ignore[arg-type]
    end = T0 + timedelta(seconds=100) - timedelta(microseconds=1)
    (trace,) = query_traces([pmu.pk], ["frequency_hz"], T0, end, max_points=10)
    assert trace.decimated
    np.testing.assert_array_equal(trace.minimum, np.arange(10) * 100)
    np.testing.assert_array_equal(trace.maximum, np.arange(10) * 100 + 99)
    np.testing.assert_allclose(trace.mean, np.arange(10) * 100 + 49.5)
    (raw,) = query_traces([pmu.pk], ["frequency_hz"], T0 + timedelta(seconds=10), end, max_points=None)
    np.testing.assert_array_equal(raw.mean, np.arange(100, 1000))


@pytest.mark.django_db
def test_query_merges_stored_chunks_with_the_recent_window(embedded: None) -> None:
    pmu = make_pmu()
    block = make_block(pmu.pk, n=300, n_phasors=2)
    ingest(codec.take_samples(block, slice(0, 200)))
    for i in range(150, 300):  # the pdc pushes single snapshots, overlapping what is stored
        push_recent(codec.take_samples(block, slice(i, i + 1)))
    end = T0 + timedelta(seconds=20)
    magnitude, angle = query_traces([pmu.pk], ["phasor_1_magnitude", "phasor_1_angle_deg"], T0, end, max_points=None)
    np.testing.assert_array_equal(magnitude.timestamp_us, block.timestamp_us)
    np.testing.assert_allclose(magnitude.mean, np.abs(block.phasors[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(angle.mean, np.degrees(np.angle(block.phasors[:, 1])), rtol=0, atol=1e-9)
    samples = read_samples(pmu.pk, T0, end)
    assert samples is not None
    np.testing.assert_array_equal(samples.phasors, block.phasors)


@pytest.mark.django_db
def test_missing_channel_reads_nan_and_json_has_none() -> None:
    pmu = make_pmu()
    ingest(make_block(pmu.pk, n=10, n_phasors=1))
    (trace,) = query_traces([pmu.pk], ["phasor_4_magnitude"], T0, T0 + timedelta(seconds=1), include_recent=False)
    assert len(trace.mean) == 10 and np.isnan(trace.mean).all()
    assert trace.to_json()["mean"] == [None] * 10


@pytest.mark.django_db
def test_query_window_excludes_samples_outside_it() -> None:
    pmu = make_pmu()
    ingest(make_block(pmu.pk, n=150, fps=30))
    start, end = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    (trace,) = query_traces([pmu.pk], ["stat"], start, end, max_points=None)
    assert len(trace.timestamp_us) == 31  # instants 30..60 of a 30 fps grid, both ends included
    assert trace.timestamp_us[0] == T0_US + 1_000_000 and trace.timestamp_us[-1] == T0_US + 2_000_000


@pytest.mark.django_db
def test_query_of_several_pmus_returns_their_traces_in_order() -> None:
    pmus = [make_pmu() for _ in range(5)]
    blocks = [make_block(pmu.pk, n=300, n_phasors=1, seed=i) for i, pmu in enumerate(pmus)]
    for block in blocks:
        ingest(block)
    traces = query_traces([p.pk for p in pmus], ["frequency_hz", "stat"], T0, T0 + timedelta(seconds=10), 100)
    assert [(t.pmu_id, t.channel) for t in traces] == [(p.pk, c) for p in pmus for c in ("frequency_hz", "stat")]
    for block, trace in zip(blocks, traces[::2], strict=True):
        assert trace.decimated and len(trace.mean) <= 100
        np.testing.assert_allclose(
            np.sum(trace.mean * trace.count), block.frequency_hz.sum(), rtol=1e-12
        )  # bucket means weighted by counts add up to the raw sum


ALL_KINDS = [
    "frequency_hz",
    "rocof_hz_per_s",
    "stat",
    "phasor_0_magnitude",
    "phasor_1_angle_deg",
    "analog_0",
    "digital_0",
    "phasor_5_magnitude",  # the PMU has 2 phasors: reads NaN
]


def _reference_columns(block: SampleBlock) -> dict[str, np.ndarray]:
    """Return the float64 columns a query should read from a block (magnitude and angle of float32 polar data)."""
    return {
        "frequency_hz": block.frequency_hz,
        "rocof_hz_per_s": block.rocof_hz_per_s,
        "stat": block.stat.astype(np.float64),
        "phasor_0_magnitude": np.abs(block.phasors[:, 0]),
        "phasor_1_angle_deg": np.degrees(np.angle(block.phasors[:, 1])),
        "analog_0": block.analogs[:, 0],
        "digital_0": block.digitals[:, 0].astype(np.float64),
        "phasor_5_magnitude": np.full(len(block), np.nan),
    }


def _brute_force(
    timestamp_us: np.ndarray, values: np.ndarray, start_us: int, end_us: int, max_points: int
) -> tuple[np.ndarray, ...]:
    """Return (mean time, mean, min, max, count) per non-empty bucket, one bucket at a time (the reference)."""
    width = -(-(end_us - start_us + 1) // max_points)
    inside = (timestamp_us >= start_us) & (timestamp_us <= end_us)
    timestamp_us, values = timestamp_us[inside], values[inside]
    rows = []
    for bucket in np.unique((timestamp_us - start_us) // width):
        pick = (timestamp_us - start_us) // width == bucket
        times, found = timestamp_us[pick], values[pick]
        valid = found[~np.isnan(found)]
        mean_time = start_us + int(np.sum(times - start_us)) // len(times)
        if len(valid):
            rows.append((mean_time, valid.mean(), valid.min(), valid.max(), len(times)))
        else:
            rows.append((mean_time, np.nan, np.nan, np.nan, len(times)))
    return tuple(np.array(column) for column in zip(*rows, strict=True))


def _assert_matches_brute_force(
    traces: list[Trace], block: SampleBlock, start_us: int, end_us: int, max_points: int
) -> None:
    columns = _reference_columns(block)
    for trace in traces:
        times, mean, minimum, maximum, count = _brute_force(
            block.timestamp_us, columns[trace.channel], start_us, end_us, max_points
        )
        assert trace.decimated and len(trace.mean) <= max_points
        np.testing.assert_array_equal(trace.timestamp_us, times)
        np.testing.assert_array_equal(trace.count, count)
        tolerance = 1e-12 if trace.channel.startswith(("frequency", "rocof", "stat", "analog", "digital")) else 1e-7
        scale = max(1.0, float(np.nanmax(np.abs(maximum), initial=0.0)))
        for actual, expected in ((trace.mean, mean), (trace.minimum, minimum), (trace.maximum, maximum)):
            np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale, equal_nan=True)


def _assert_raw(traces: list[Trace], block: SampleBlock, start_us: int, end_us: int) -> None:
    columns = _reference_columns(block)
    inside = (block.timestamp_us >= start_us) & (block.timestamp_us <= end_us)
    for trace in traces:
        assert not trace.decimated
        np.testing.assert_array_equal(trace.timestamp_us, block.timestamp_us[inside])
        expected = columns[trace.channel][inside]
        scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(trace.mean, expected, rtol=1e-7, atol=1e-7 * scale, equal_nan=True)


def _fleet_block(pmu_id: int, n: int, seed: int = 3) -> SampleBlock:
    """Return n samples at 30 fps with NaN gaps: a few lone samples and one whole second of frequency."""
    block = make_block(pmu_id, n=n, fps=30, n_phasors=2, n_analogs=1, n_digitals=1, seed=seed)
    block.frequency_hz[[5, 77, 400]] = np.nan
    block.frequency_hz[600:630] = np.nan
    block.analogs[::97, 0] = np.nan
    block.stat[::50] = 0x8000
    return block


@pytest.mark.django_db
@pytest.mark.parametrize("slice_mb", [8, 0.0005])  # one group of chunks, or about one chunk per group
@pytest.mark.parametrize("max_points", [1, 7, 37, 400, 5000])
def test_decimated_query_equals_brute_force_over_mixed_chunk_lengths(
    max_points: int, slice_mb: float, settings
) -> None:
    settings.WAMS_QUERY_SLICE_MB = slice_mb
    pmu = make_pmu()
    block = _fleet_block(pmu.pk, 1800)  # 60 s
    late = np.zeros(len(block), dtype=bool)
    late[1000:1010] = True  # held back, then stored in a later chunk: chunk order is not time order
    held = codec.take_samples(block, ~late)
    first = 0
    for seconds in (1, 1, 10, 1, 20, 1, 5, 1, 1):  # 1 s pdc blocks among compacted ones, then 19 s
        count = int(np.searchsorted(held.timestamp_us, held.timestamp_us[first] + seconds * 1_000_000))
        ingest(codec.take_samples(held, slice(first, count)))
        first = count
    ingest(codec.take_samples(held, slice(first, None)))
    ingest(codec.take_samples(block, late))
    start_us, end_us = T0_US + 333_333, T0_US + 57_123_456  # both ends inside a chunk
    traces = query_traces(
        [pmu.pk], ALL_KINDS, datetime_from_us(start_us), datetime_from_us(end_us), max_points, include_recent=False
    )
    if max_points < len(block):
        _assert_matches_brute_force(traces, block, start_us, end_us, max_points)
    else:  # fits: the raw samples, time-ordered
        _assert_raw(traces, block, start_us, end_us)


@pytest.mark.django_db
def test_traces_do_not_depend_on_chunk_length() -> None:
    short, long = make_pmu(), make_pmu()
    block = _fleet_block(short.pk, 900)
    for first in range(0, 900, 30):
        ingest(codec.take_samples(block, slice(first, first + 30)))  # 1 s chunks
    block.pmu_id = long.pk
    ingest(block)  # one 30 s chunk
    traces = query_traces([short.pk, long.pk], ALL_KINDS, T0, T0 + timedelta(seconds=30), 50, include_recent=False)
    for one, other in zip(traces[: len(ALL_KINDS)], traces[len(ALL_KINDS) :], strict=True):
        np.testing.assert_array_equal(one.timestamp_us, other.timestamp_us)
        np.testing.assert_array_equal(one.count, other.count)
        np.testing.assert_array_equal(one.minimum, other.minimum)
        np.testing.assert_array_equal(one.maximum, other.maximum)
        np.testing.assert_allclose(one.mean, other.mean, rtol=1e-14, equal_nan=True)


@pytest.mark.django_db
@pytest.mark.parametrize("slice_mb", [8, 0.0005])
def test_decimated_query_merges_recent_window_like_brute_force(embedded: None, slice_mb: float, settings) -> None:
    settings.WAMS_QUERY_SLICE_MB = slice_mb
    pmu = make_pmu()
    block = _fleet_block(pmu.pk, 900)
    ingest(codec.take_samples(block, slice(0, 600)))
    for first in range(450, 900, 10):  # the recent window overlaps what is stored and goes beyond it
        push_recent(codec.take_samples(block, slice(first, first + 10)))
    start_us, end_us = T0_US, T0_US + 30_000_000
    traces = query_traces([pmu.pk], ALL_KINDS, T0, datetime_from_us(end_us), 45)
    _assert_matches_brute_force(traces, block, start_us, end_us, 45)
