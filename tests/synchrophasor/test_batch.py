"""The numpy batch decoder agrees with the per-frame path and flags bad frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synchrophasor.helpers import PCAPS, make_config, make_pmu, read_hex, requires_vectors, sample_measurements
from wams.synchrophasor import ConfigFrame, DataFrame, decode_data_batch, decode_frame, encode_frame, peek_header
from wams.synchrophasor.pcap import iter_capture_frames


def _assert_batch_equals_frames(cfg: ConfigFrame, raws: list[bytes]) -> None:
    batch = decode_data_batch(cfg, b"".join(raws))
    assert len(batch) == len(raws)
    assert batch.crc_ok.all() and batch.ok.all()
    for k, raw in enumerate(raws):
        frame = decode_frame(raw, cfg)
        assert isinstance(frame, DataFrame)
        assert batch.soc[k] == frame.soc and batch.fracsec[k] == frame.fracsec
        assert batch.timestamp_s[k] == pytest.approx(frame.timestamp_s, abs=1e-9)
        for i, pmu in enumerate(frame.pmus):
            n = len(pmu.phasors)
            # Polar phasors: float32 trigonometry in the batch path (the wire's precision).
            np.testing.assert_allclose(batch.phasors[k, i, :n], pmu.phasors, rtol=3e-7, atol=1e-9)
            assert batch.frequency_hz[k, i] == pytest.approx(pmu.frequency_hz, abs=1e-9)
            assert batch.rocof_hz_per_s[k, i] == pytest.approx(pmu.rocof_hz_per_s, abs=1e-9)
            np.testing.assert_allclose(batch.analogs[k, i, : len(pmu.analogs)], pmu.analogs, rtol=1e-12)
            assert list(batch.digitals[k, i, : len(pmu.digitals)]) == pmu.digitals
            assert batch.stat[k, i] == pmu.stat


@pytest.mark.parametrize(
    "fmt",
    [(True, True, True, True), (False, False, False, False), (False, True, False, True), (True, False, True, False)],
)
def test_batch_equals_per_frame_decoding_in_every_format(fmt: tuple[bool, bool, bool, bool]) -> None:
    ph_float, polar, fr_float, an_float = fmt
    pmus = [
        make_pmu(i + 1, 3 + i, 2, i, phasor_float=ph_float, polar=polar, freq_float=fr_float, analog_float=an_float)
        for i in range(3)
    ]
    cfg = make_config(pmus)
    raws = [
        encode_frame(DataFrame(cfg.idcode, 1_700_000_000, k * 20_000, sample_measurements(cfg, k)), cfg)
        for k in range(40)
    ]
    _assert_batch_equals_frames(cfg, raws)


@requires_vectors
def test_batch_equals_per_frame_on_annex_d_and_captures() -> None:
    cfg = decode_frame(read_hex("annexD_cfg2.hex"))
    assert isinstance(cfg, ConfigFrame)
    _assert_batch_equals_frames(cfg, [read_hex("annexD_data.hex")] * 3)
    for pcap in PCAPS[:6]:
        configs: dict[int, ConfigFrame] = {}
        data: dict[int, list[bytes]] = {}
        for cf in iter_capture_frames(pcap):
            head = peek_header(cf.data)
            if head.frame_type == 3:
                decoded = decode_frame(cf.data)
                assert isinstance(decoded, ConfigFrame)
                configs[head.idcode] = decoded
            elif head.frame_type == 0 and head.idcode in configs:
                data.setdefault(head.idcode, []).append(cf.data)
        for idcode, raws in data.items():
            _assert_batch_equals_frames(configs[idcode], raws[:200])


def test_batch_flags_bad_crc_and_wrong_length_rows() -> None:
    cfg = make_config([make_pmu(1, 4)])
    raws = [encode_frame(DataFrame(cfg.idcode, 1_700_000_000, k, sample_measurements(cfg, k)), cfg) for k in range(4)]
    corrupted = bytearray(raws[1])
    corrupted[30] ^= 1
    batch = decode_data_batch(cfg, [raws[0], bytes(corrupted), raws[2][:-1], raws[3]])
    assert batch.crc_ok.tolist() == [True, False, False, True]
    assert batch.ok.tolist() == [True, False, False, True]


def test_batch_marks_absent_integer_phasors_nan() -> None:
    cfg = make_config([make_pmu(1, 2, phasor_float=False, polar=False)])
    data = sample_measurements(cfg)
    data[0].phasors[1] = complex(np.nan, np.nan)
    raw = encode_frame(DataFrame(cfg.idcode, 1, 0, data), cfg)
    batch = decode_data_batch(cfg, raw)
    assert np.isnan(batch.phasors[0, 0, 1])
    assert not np.isnan(batch.phasors[0, 0, 0])
    single = decode_frame(raw, cfg)
    assert isinstance(single, DataFrame) and np.isnan(single.pmus[0].phasors[1])
