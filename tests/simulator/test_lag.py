"""A simulation behind the wall clock: frames wait for true values, or say "data invalid"; never held values."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import numpy as np
import pytest

from wams.simulator.engine.noise import MeasurementNoise
from wams.simulator.engine.realtime import (
    PREROLL_AFTER_S,
    PREROLL_BEFORE_S,
    SCENARIO_LEAD_S,
    GridSample,
    RealTimeSimulator,
    next_stop_s,
)
from wams.simulator.engine.scenarios import plan_scenario
from wams.simulator.engine.trajectory import TrajectoryBuffer, TrajectoryChunk
from wams.simulator.fleet import ChannelSpec, PathSpec, PmuSpec, StreamSpec
from wams.simulator.fleet.streams import InstantSampler, SimulatedStream
from wams.synchrophasor import PdcClient, Stat

pytestmark = pytest.mark.timeout(90)

STEP_S = 1.0 / 32.0
ANGLE_RATE_RAD_PER_S = 2.0 * math.pi  # synthetic trajectory: the angle turns once a second


def ramp_chunk(t_s: np.ndarray) -> TrajectoryChunk:
    """Return a 2-bus, 1-line, 1-generator chunk whose bus angles turn at 1 rev/s."""
    n = t_s.shape[0]
    angle = np.column_stack([ANGLE_RATE_RAD_PER_S * t_s, ANGLE_RATE_RAD_PER_S * t_s + 0.1])
    return TrajectoryChunk(
        t_s=t_s,
        bus_angle_rad=angle,
        bus_magnitude_pu=np.ones((n, 2)),
        bus_frequency_pu=np.ones((n, 2)),
        generator_speed_pu=np.ones((n, 1)),
        generator_power_pu=np.ones((n, 1)),
        line_closed=np.ones(1, dtype=bool),
        generator_online=np.ones(1, dtype=bool),
    )


class BufferClock:
    """A trajectory buffer on a UTC clock: the part of a simulator `InstantSampler` reads."""

    def __init__(self, epoch_utc_s: float) -> None:
        self.epoch_utc_s = epoch_utc_s
        self.buffer = TrajectoryBuffer(2, 1, 1, capacity_steps=64)

    def sim_time_at(self, utc_s: float) -> float:
        return utc_s - self.epoch_utc_s

    def sample_utc(self, utc_s: np.ndarray) -> GridSample:
        utc = np.atleast_1d(np.asarray(utc_s, dtype=np.float64))
        snap = self.buffer.sample(utc - self.epoch_utc_s)
        none = np.zeros((utc.shape[0], 1), dtype=np.complex128)
        return GridSample(utc_s=utc, snapshot=snap, line_current_from_pu=none, line_current_to_pu=none)


def test_buffer_flags_instants_past_its_end_or_evicted_as_not_simulated():
    buffer = TrajectoryBuffer(2, 1, 1, capacity_steps=8)
    buffer.append(ramp_chunk(np.arange(0, 4) * STEP_S))  # 0 .. 3/32 s
    snap = buffer.sample(np.array([-1.0, 0.0, 0.05, 3 * STEP_S, 3 * STEP_S + 0.01]))
    assert snap.simulated.tolist() == [True, True, True, True, False]  # before t = 0: the initial state
    np.testing.assert_allclose(snap.bus_angle_rad[2, 0], ANGLE_RATE_RAD_PER_S * 0.05, rtol=1e-12)
    buffer.append(ramp_chunk(np.arange(4, 12) * STEP_S))  # ring of 8 now holds 4/32 .. 11/32 s
    snap = buffer.sample(np.array([STEP_S, 5 * STEP_S]))
    assert snap.simulated.tolist() == [False, True]


def test_next_stop_lands_on_the_step_grid_at_most_one_chunk_ahead():
    chunk_s = 4 * STEP_S
    assert next_stop_s(1.0, 1.01, STEP_S, chunk_s) == pytest.approx(1.0 + STEP_S, abs=1e-12)
    assert next_stop_s(1.0, 1.0 + 2 * STEP_S, STEP_S, chunk_s) == pytest.approx(1.0 + 2 * STEP_S, abs=1e-12)
    assert next_stop_s(1.0, 5.0, STEP_S, chunk_s) == pytest.approx(1.0 + chunk_s, abs=1e-12)
    # Off the grid after an action between boundaries: back onto it.
    assert next_stop_s(1.01, 1.02, STEP_S, chunk_s) == pytest.approx(1.0 + STEP_S, abs=1e-12)
    assert next_stop_s(1.01, 9.0, STEP_S, chunk_s) == pytest.approx(1.0 + 4 * STEP_S, abs=1e-12)


def test_sampler_waits_for_a_lagging_buffer_and_returns_the_true_values():
    async def main() -> tuple[GridSample, InstantSampler, float]:
        soc = math.floor(time.time())
        sim = BufferClock(epoch_utc_s=soc - 0.5)  # the instant asked for, SOC + 0, is t = 0.5 s
        sim.buffer.append(ramp_chunk(np.arange(0, 9) * STEP_S))  # simulated up to 0.25 s only
        sampler = InstantSampler(sim, max_wait_s=10.0)  # type: ignore[arg-type]
        # The engine catches up from another thread, as the process mirror's reader does.
        timer = threading.Timer(0.1, sim.buffer.append, [ramp_chunk(np.arange(9, 33) * STEP_S)])
        timer.start()
        sample, same = await asyncio.gather(sampler.at(soc, 0, 1_000_000), sampler.at(soc, 0, 1_000_000))
        timer.join()
        assert same is sample  # two streams asking the same instant share one wait
        return sample, sampler, 0.5

    sample, sampler, t_s = asyncio.run(main())
    assert sample.simulated[0]
    # The value at the instant's own time: holding the 0.25 s state would be 90 degrees off.
    np.testing.assert_allclose(sample.snapshot.bus_angle_rad[0, 0], ANGLE_RATE_RAD_PER_S * t_s, atol=1e-9)
    assert sampler.stats.waited == 1 and sampler.stats.invalid == 0


def test_sampler_flags_an_instant_still_unsimulated_after_the_bound():
    async def main() -> tuple[GridSample, InstantSampler]:
        soc = math.floor(time.time())
        sim = BufferClock(epoch_utc_s=soc - 0.5)
        sim.buffer.append(ramp_chunk(np.arange(0, 9) * STEP_S))
        sampler = InstantSampler(sim, max_wait_s=0.05)  # type: ignore[arg-type]
        return await sampler.at(soc, 0, 1_000_000), sampler

    sample, sampler = asyncio.run(main())
    assert not sample.simulated[0]
    assert sampler.stats.waited == 1 and sampler.stats.invalid == 1


# ------------------------------------------------------------------------- over the wire


def voltage_stream(idcode: int, **fmt: bool) -> StreamSpec:
    channels = (
        ChannelSpec("phasor", "V16", "bus_voltage", bus=16, unit="V"),
        ChannelSpec("phasor", "I16-17", "line_current", bus=16, line=(16, 17), unit="A"),
        ChannelSpec("analog", "P16-17", "power", bus=16, line=(16, 17), unit="MW"),
    )
    pmu = PmuSpec(idcode=idcode, station_name=f"L{idcode}", bus=16, channels=channels, **fmt)
    return StreamSpec(f"L{idcode}", idcode, 30, (pmu,), (PathSpec("fibre", "127.0.0.1", 0, "tcp"),))


async def serve_and_receive(streams: list[SimulatedStream], n_frames: int) -> list[list]:
    """Serve `streams`, take `n_frames` data frames from each, stop; return [(arrival, frame)] per stream."""
    got = []
    for stream in streams:
        stream.meter.noise = MeasurementNoise(tve_sd=0.0, frequency_sd_hz=0.0, rocof_sd_hz_per_s=0.0)
        await stream.start()
    try:
        for stream in streams:
            client = PdcClient("127.0.0.1", stream.relays["fibre"].listen_port, idcode=stream.spec.idcode)
            await client.connect()
            await client.start()
            got.append([await client.receive(timeout_s=5.0) for _ in range(n_frames)])
            await client.close()
    finally:
        for stream in streams:
            await stream.stop()
    return got


def keep_behind(sim: RealTimeSimulator, lag_s: float, stop: threading.Event) -> None:
    """Integrate so the run stays `lag_s` to one step behind the wall clock."""
    while not stop.is_set():
        target_s = math.floor(sim.sim_time_at(time.time() - lag_s) / STEP_S) * STEP_S
        if target_s > sim.t_s:
            sim.advance_to(target_s)
        stop.wait(0.005)


def test_stream_waits_for_a_lagging_simulation_and_sends_the_values_of_its_time_stamps():
    sim = RealTimeSimulator("ieee39", epoch_utc_s=time.time())  # seconds behind once loaded
    sim.schedule("generator_trip", 0.0)  # the angles then drift with the frequency: held values would show
    sampler = InstantSampler(sim, max_wait_s=5.0)  # a loaded machine may starve the driver: still true values
    stream = SimulatedStream(voltage_stream(601), sim, sampler)
    stop = threading.Event()
    driver = threading.Thread(target=keep_behind, args=(sim, 0.1, stop), daemon=True)
    driver.start()
    try:
        deadline_s = time.time() + 30.0  # catch up the seconds the case took to load first
        while sim.t_s < sim.sim_time_at(time.time()) - 0.2 and time.time() < deadline_s:
            time.sleep(0.01)
        (got,) = asyncio.run(serve_and_receive([stream], 30))
    finally:
        stop.set()
        driver.join()
    stamps = np.array([frame.timestamp_s for _arrival, frame in got])
    truth = sim.sample_utc(stamps)
    held = sim.sample_utc(stamps - 0.1)  # about what the stream sent before: the state 0.1 s earlier
    assert truth.simulated.all()
    sent_v = np.array([frame.pmus[0].phasors[0] for _arrival, frame in got])
    sent_f = np.array([frame.pmus[0].frequency_hz for _arrival, frame in got])
    true_v = np.array([stream.meter.measure(truth, k)[0].phasors[0] for k in range(len(got))])
    true_f = np.array([stream.meter.measure(truth, k)[0].frequency_hz for k in range(len(got))])
    held_v = np.array([stream.meter.measure(held, k)[0].phasors[0] for k in range(len(got))])
    # float32 on the wire: 1e-6 relative; the held values are further off than that.
    assert np.max(np.abs(held_v - true_v) / np.abs(true_v)) > 1e-4
    np.testing.assert_allclose(sent_v, true_v, rtol=1e-6)
    np.testing.assert_allclose(sent_f, true_f, atol=1e-4)
    assert all(Stat.from_word(frame.pmus[0].stat).data_error == 0 for _arrival, frame in got)
    assert sampler.stats.waited > 0 and sampler.stats.invalid == 0
    # No frame can leave before its instant is simulated, 0.1 s after its time stamp.
    assert min(arrival - frame.timestamp_s for arrival, frame in got) >= 0.1 - 1e-3


def test_stream_past_the_wait_bound_sends_stat_data_invalid_and_no_values():
    sim = RealTimeSimulator("ieee39", epoch_utc_s=time.time() - 5.0)  # never advanced: 5 s behind
    sampler = InstantSampler(sim, max_wait_s=0.05)
    streams = [
        SimulatedStream(voltage_stream(611), sim, sampler),
        SimulatedStream(voltage_stream(612, phasor_float=False, freq_float=False, analog_float=False), sim, sampler),
    ]
    got = asyncio.run(serve_and_receive(streams, 4))
    for frames in got:
        for _arrival, frame in frames:
            block = frame.pmus[0]
            assert Stat.from_word(block.stat).data_error == 0b10
            assert np.isnan(np.asarray(block.phasors)).all()  # absent (NaN, or 0x8000 in 16-bit fields)
    assert all(math.isnan(frame.pmus[0].frequency_hz) for _arrival, frame in got[0])
    assert sampler.stats.invalid >= 4 and sampler.stats.invalid == sampler.stats.instants


def test_real_time_loop_catches_up_before_serving_and_steps_on_the_step_grid(tmp_path):
    sim = RealTimeSimulator("ieee39", lookahead_s=0.2, truth_dir=tmp_path, epoch_utc_s=time.time() - 2.0)
    sim.schedule("ambient", 0.0)
    try:
        sim.start()
        assert sim.buffer.covers(sim.sim_time_at(time.time()))
        time.sleep(0.5)
        # A fault record of a window not simulated yet is refused, not written with held values.
        t_s = sim.t_s
        plan = plan_scenario(sim.dyn, "fault", t_s + 5.0, bus=16)
        with pytest.raises(LookupError):
            sim.write_fault_record(t_s + 4.8, t_s + 5.8, plan)
    finally:
        sim.stop()
    times = sim.buffer.step_times_s()
    assert times.size > 2.5 / STEP_S  # caught up 2 s, then kept up for 0.5 s
    # Stops every few milliseconds would leave steps between the boundaries (and cost ten times the CPU).
    np.testing.assert_allclose(times / STEP_S, np.round(times / STEP_S), atol=1e-6)


def test_a_scheduled_fault_is_integrated_ahead_of_the_wall_clock_before_it_is_due():
    """Switching steps cost more than real time: within PREROLL_BEFORE_S of an action, integrate past it."""
    sim = RealTimeSimulator("ieee39", epoch_utc_s=time.time())
    future = sim.schedule("fault", lead_s=SCENARIO_LEAD_S, bus=4, duration_s=0.08)
    sim.advance_to(0.5)  # drains the request: the plan is queued SCENARIO_LEAD_S after the run's time then
    plan = future.result(timeout=0)
    assert plan.t_start_s == pytest.approx(SCENARIO_LEAD_S, abs=1e-9)
    lookahead_t = 0.3
    far = plan.t_start_s - PREROLL_BEFORE_S - 1.0
    target_t, wake_t = sim._target(far, lookahead_t)
    assert target_t == pytest.approx(far + lookahead_t)
    assert wake_t == pytest.approx(plan.t_start_s - PREROLL_BEFORE_S)
    near = plan.t_start_s - 0.5 * PREROLL_BEFORE_S
    target_t, _ = sim._target(near, lookahead_t)
    # Both the fault and its clearing are within reach: integrate through a second after the clearing.
    assert target_t == pytest.approx(plan.t_start_s + 0.08 + PREROLL_AFTER_S)
    sim.advance_to(target_t)
    assert sim.t_s >= plan.t_start_s + 0.08 + PREROLL_AFTER_S - 1e-9
    assert [e.kind for e in sim.dyn.events] == ["fault_on", "fault_off"]
    target_t, wake_t = sim._target(near, lookahead_t)
    assert target_t == pytest.approx(near + lookahead_t) and wake_t == math.inf  # nothing left to pre-roll
