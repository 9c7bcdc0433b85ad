"""Snapshot arrays and the live payload contract."""

from __future__ import annotations

import math

import numpy as np

from wams.pdc.align import Snapshot
from wams.pdc.livefeed import LiveBuffer, PmuTable
from wams.synchrophasor import PmuData

T0_US = 1_700_000_000 * 1_000_000
BASE_V = 345_000 / math.sqrt(3)


def pmu_sample(magnitude_v: float, angle_deg: float, frequency_hz: float = 60.0, stat: int = 0) -> PmuData:
    return PmuData(
        stat=stat,
        phasors=np.array([magnitude_v * np.exp(1j * np.radians(angle_deg)), 100.0]),
        frequency_hz=frequency_hz,
        rocof_hz_per_s=0.01,
    )


def snapshot(t_us: int, samples: dict[int, PmuData], missing: tuple[int, ...] = ()) -> Snapshot[PmuData]:
    return Snapshot(t_us, samples, missing, t_us / 1e6, t_us / 1e6)  # type: ignore[arg-type]


def test_view_gives_per_unit_magnitude_and_absolute_angle_of_phasor_zero() -> None:
    table = PmuTable({5: BASE_V, 9: BASE_V})
    view = table.view(snapshot(T0_US, {5: pmu_sample(1.02 * BASE_V, -12.5, 59.97, stat=0x2000)}))
    np.testing.assert_array_equal(view.pmu_ids, [5, 9])
    np.testing.assert_array_equal(view.present, [True, False])
    np.testing.assert_allclose(view.voltage_magnitude_pu[0], 1.02, rtol=1e-12)
    np.testing.assert_allclose(view.voltage_angle_deg[0], -12.5, atol=1e-9)
    np.testing.assert_allclose(view.frequency_hz[0], 59.97)
    assert view.stat[0] == 0x2000
    assert math.isnan(view.frequency_hz[1])


def test_live_payload_has_null_for_missing_pmus_and_keeps_one_instant_per_bucket() -> None:
    table = PmuTable({5: BASE_V, 9: BASE_V})
    buffer = LiveBuffer(points_hz=10)
    kept = []
    for k in range(6):  # 30 fps instants over 0.2 s -> buckets of 100 ms keep instants 0 and 3
        t = T0_US + (k * 1_000_000 + 15) // 30
        samples = {5: pmu_sample(BASE_V, 10.0)}
        if k != 3:
            samples[9] = pmu_sample(BASE_V, 20.0)
        kept.append(buffer.add(table.view(snapshot(t, samples))))
    assert kept == [True, False, False, True, False, False]
    payload = buffer.take_payload(sent_at_s=123.0)
    assert payload is not None
    assert payload["sent_at"] == 123.0
    np.testing.assert_allclose(payload["t"], [T0_US / 1e6, T0_US / 1e6 + 0.1])
    assert set(payload["pmus"]) == {"5", "9"}
    assert payload["pmus"]["9"]["angle_deg"][1] is None
    np.testing.assert_allclose(payload["pmus"]["9"]["magnitude_pu"][0], 1.0, rtol=1e-12)
    assert set(payload["pmus"]["5"]) == {"frequency_hz", "rocof_hz_per_s", "magnitude_pu", "angle_deg", "stat"}
    assert buffer.take_payload(124.0) is None
