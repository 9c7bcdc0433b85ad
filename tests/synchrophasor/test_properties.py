"""Property tests: round trips in every format, and no foreign exception on any input."""

from __future__ import annotations

import math
import string
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wams.synchrophasor import (
    AnalogChannel,
    C37118Error,
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    HeaderFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
    StreamReader,
    decode_data_batch,
    decode_frame,
    encode_frame,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

f32 = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)
name16 = st.text(string.ascii_letters + string.digits + "-_.", min_size=0, max_size=16)
name_utf8 = st.text(min_size=0, max_size=20)


@st.composite
def pmu_configs(draw: st.DrawFn, cfg_type: int) -> PmuConfig:
    """Draw one PMU configuration that is exactly representable on the wire for `cfg_type`."""
    name = draw(name_utf8 if cfg_type == 3 else name16)
    n_ph = draw(st.integers(0, 5))
    n_an = draw(st.integers(0, 3))
    n_dg = draw(st.integers(0, 2))
    phasors = []
    for _ in range(n_ph):
        if cfg_type == 3:
            scale = float(np.float32(draw(st.floats(1e-3, 100.0))))
            theta = float(np.float32(draw(st.floats(-0.5, 0.5))))
        else:
            scale, theta = draw(st.integers(1, 2_000_000)) * 1e-5, 0.0
        phasors.append(
            PhasorChannel(
                draw(name_utf8 if cfg_type == 3 else name16),
                draw(st.sampled_from(["V", "A"])),
                scale,
                theta,
                component=draw(st.integers(0, 7)) if cfg_type == 3 else 0,
                modification_flags=draw(st.integers(0, 0xFFFF)) if cfg_type == 3 else 0,
                user_flags=draw(st.integers(0, 255)) if cfg_type == 3 else 0,
            )
        )
    analogs = []
    for k in range(n_an):
        if cfg_type == 3:
            analogs.append(
                AnalogChannel(
                    f"A{k}",
                    0,
                    float(np.float32(draw(st.floats(0.01, 10.0)))),
                    float(np.float32(draw(st.floats(-5.0, 5.0)))),
                )
            )
        else:
            analogs.append(
                AnalogChannel(f"A{k}", draw(st.sampled_from([0, 1, 2, 70, 255])), float(draw(st.integers(1, 100))))
            )
    digitals = [
        DigitalWord([f"d{w}{b}" for b in range(16)], draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
        for w in range(n_dg)
    ]
    pmu = PmuConfig(
        station_name=name,
        idcode=draw(st.integers(1, 65534)),
        phasor_float=draw(st.booleans()),
        polar=draw(st.booleans()),
        freq_float=draw(st.booleans()),
        analog_float=draw(st.booleans()),
        phasors=phasors,
        analogs=analogs,
        digitals=digitals,
        nominal_hz=draw(st.sampled_from([50, 60])),
        cfgcnt=draw(st.integers(0, 0xFFFF)),
    )
    if cfg_type == 3:
        pmu.global_pmu_id = draw(st.binary(min_size=16, max_size=16))
        pmu.latitude_deg = float(np.float32(draw(st.floats(-90, 90))))
        pmu.longitude_deg = draw(st.sampled_from([math.inf, 12.5, -179.25]))
        pmu.elevation_m = float(np.float32(draw(st.floats(-400, 9000))))
        pmu.svc_class = draw(st.sampled_from(["M", "P"]))
        pmu.window_us = draw(st.integers(-(2**31), 2**31 - 1))
        pmu.group_delay_us = draw(st.integers(-(2**31), 2**31 - 1))
    return pmu


@st.composite
def configs(draw: st.DrawFn) -> ConfigFrame:
    """Draw a CFG-1, CFG-2 or CFG-3 with 1-3 PMUs, version 1 or 2."""
    cfg_type = draw(st.sampled_from([1, 2, 3]))
    version = 2 if cfg_type == 3 else draw(st.sampled_from([1, 2]))
    return ConfigFrame(
        idcode=draw(st.integers(1, 65534)),
        soc=draw(st.integers(0, 2**32 - 1)),
        fracsec=draw(st.integers(0, 2**32 - 1)),
        time_base=draw(st.integers(1, 2**24 - 1)),
        data_rate=draw(st.sampled_from([1, 10, 25, 30, 50, 60, 120, -5])),
        pmus=draw(st.lists(pmu_configs(cfg_type), min_size=1, max_size=3)),
        version=version,
        cfg_type=cfg_type,
    )


@SETTINGS
@given(configs())
def test_config_encode_then_decode_returns_same_values(cfg: ConfigFrame) -> None:
    again = decode_frame(encode_frame(cfg))
    assert again == cfg


@st.composite
def config_and_data(draw: st.DrawFn) -> tuple[ConfigFrame, DataFrame]:
    """Draw a configuration and a data frame whose values fit it."""
    cfg = draw(configs())
    pmus = []
    for pmu in cfg.pmus:
        values = []
        for ch in pmu.phasors:
            if pmu.phasor_float:
                values.append(complex(draw(f32), draw(f32)))
            else:
                # Stay inside the 16-bit count range of this channel.
                mag = draw(st.floats(0, 30000)) * abs(ch.scale)
                values.append(mag * np.exp(1j * draw(st.floats(-math.pi, math.pi))))
        if pmu.freq_float:
            freq, rocof = float(np.float32(draw(st.floats(40, 70)))), float(np.float32(draw(st.floats(-10, 10))))
        else:
            freq = pmu.nominal_hz + draw(st.integers(-30000, 30000)) / 1000.0
            rocof = draw(st.integers(-30000, 30000)) / 100.0
        analogs = []
        for an in pmu.analogs:
            if pmu.analog_float:
                analogs.append(float(np.float32(draw(f32))))
            else:
                analogs.append(draw(st.integers(-32767, 32767)) * an.scale + an.offset)
        pmus.append(
            PmuData(
                stat=draw(st.integers(0, 0xFFFF)),
                phasors=np.array(values, dtype=np.complex128),
                frequency_hz=freq,
                rocof_hz_per_s=rocof,
                analogs=np.array(analogs, dtype=np.float64),
                digitals=[draw(st.integers(0, 0xFFFF)) for _ in pmu.digitals],
            )
        )
    frame = DataFrame(
        cfg.idcode, draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), pmus, cfg.time_base, cfg.version
    )
    return cfg, frame


def _phasor_tolerance(pmu: PmuConfig, sent: np.ndarray) -> np.ndarray:
    """Absolute tolerance (V or A) per phasor of a round trip through the wire format."""
    size = np.abs(sent)
    if pmu.phasor_float:
        return 4e-7 * size + 1e-12  # float32 rounding of each component (angle in polar)
    scales = np.array([ch.scale for ch in pmu.phasors])
    if pmu.polar:
        # Half a magnitude count, plus the angle's half step of 1e-4 rad.
        return 0.5 * scales + 0.5e-4 * size + 1e-9 * size + 1e-9
    return np.sqrt(0.5) * scales + 1e-9 * size + 1e-9  # half a count on each component


@SETTINGS
@given(config_and_data())
def test_data_encode_then_decode_returns_same_values_in_every_format(case: tuple[ConfigFrame, DataFrame]) -> None:
    cfg, frame = case
    raw = encode_frame(frame, cfg)
    assert len(raw) == cfg.data_frame_size
    again = decode_frame(raw, cfg)
    assert isinstance(again, DataFrame)
    assert (again.idcode, again.soc, again.fracsec) == (frame.idcode, frame.soc, frame.fracsec)
    for pmu_cfg, sent, got in zip(cfg.pmus, frame.pmus, again.pmus, strict=True):
        assert got.stat == sent.stat and got.digitals == sent.digitals
        err = np.abs(got.phasors - sent.phasors)
        tol = _phasor_tolerance(pmu_cfg, sent.phasors)
        assert np.all(err <= tol), (err, tol)
        if pmu_cfg.freq_float:
            assert math.isclose(got.frequency_hz, sent.frequency_hz, rel_tol=1e-7)
            assert math.isclose(got.rocof_hz_per_s, sent.rocof_hz_per_s, rel_tol=1e-7, abs_tol=1e-9)
        else:
            assert math.isclose(got.frequency_hz, sent.frequency_hz, abs_tol=1e-9)
            assert math.isclose(got.rocof_hz_per_s, sent.rocof_hz_per_s, abs_tol=1e-9)
        np.testing.assert_allclose(got.analogs, sent.analogs, rtol=1e-6, atol=1e-6)
    batch = decode_data_batch(cfg, raw)
    assert batch.ok.all()
    for i, got in enumerate(again.pmus):
        np.testing.assert_allclose(batch.phasors[0, i, : len(got.phasors)], got.phasors, rtol=3e-7, atol=1e-9)


def _outcome(call: Callable[[], object]) -> str:
    """Return "ok", or the reason of the codec error `call` raised (anything else propagates)."""
    try:
        call()
    except C37118Error as exc:
        return exc.reason
    return "ok"


@SETTINGS
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_raise_only_the_codec_error(data: bytes) -> None:
    assert _outcome(lambda: decode_frame(data))


@SETTINGS
@given(
    config_and_data(),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.booleans(),
)
def test_mutated_frames_raise_only_the_codec_error(
    case: tuple[ConfigFrame, DataFrame], edits: list[tuple[int, int]], fix_crc: bool
) -> None:
    from wams.synchrophasor import crc_ccitt

    cfg, frame = case
    for raw in (encode_frame(cfg), encode_frame(frame, cfg)):
        buf = bytearray(raw)
        for pos, value in edits:
            buf[pos % len(buf)] = value
        if fix_crc:
            buf[-2:] = crc_ccitt(bytes(buf[:-2])).to_bytes(2, "big")
        mutated = bytes(buf)
        for conf in (None, cfg):
            assert _outcome(lambda conf=conf, mutated=mutated: decode_frame(mutated, conf))
        batch_input = mutated if len(mutated) == cfg.data_frame_size else [mutated]
        assert _outcome(lambda batch_input=batch_input: decode_data_batch(cfg, batch_input))


@SETTINGS
@given(st.binary(min_size=0, max_size=400), st.integers(1, 64))
def test_stream_reader_recovers_next_good_frame_after_garbage(garbage: bytes, chunk: int) -> None:
    good = encode_frame(CommandFrame(7, 1, 2, Command.START))
    header = encode_frame(HeaderFrame(7, 1, 2, "x" * 40))
    reader = StreamReader(max_frame_size=512)
    # Enough good frames after the garbage to overrun any false FRAMESIZE the garbage announces.
    stream = garbage + good + header * 10
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out += reader.feed(stream[i : i + chunk])
    assert good in out
    assert out[-1] == header
    assert reader.buffered <= 512
