"""The detector bank's configuration, read from the grid model and DetectorSettings (worker thread only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wams.detection.analytics.fast import (
    AngleSeparationConfig,
    DataQualityConfig,
    FastDetectorConfig,
    FrequencyConfig,
    IslandingConfig,
    LineTripConfig,
    RocofConfig,
    VoltageConfig,
)
from wams.detection.analytics.incidents import GridTopology, Unit
from wams.detection.analytics.incidents.sustained import SustainedConfig


@dataclass(frozen=True)
class DetectorPlan:
    """The bank configuration for one ordered set of PMUs, with their names for event summaries."""

    pmu_ids: tuple[int, ...]
    config: FastDetectorConfig
    names: tuple[str, ...]
    fingerprint: str  # changes whenever an input of the configuration changes
    topology: GridTopology = field(default_factory=lambda: GridTopology(lines=(), pmu_buses=()))
    sustained: SustainedConfig = field(default_factory=SustainedConfig)
    #: (PMU index, phasor index in its data) of every line-current channel, in the bank's current order
    currents: tuple[tuple[int, int], ...] = ()


def current_channels(pmu_ids: Sequence[int]) -> list[tuple[int, int, str | None]]:
    """Return (PMU index, phasor index, line name) of the line-current phasors of these PMUs, PMU by PMU.

    A phasor's index in the PMU's data frame is its rank among the PMU's phasor channels (by order),
    as the configuration frame lists them.
    """
    from wams.grid.models import Channel

    index = {p: i for i, p in enumerate(pmu_ids)}
    rows = (
        Channel.objects.filter(pmu_id__in=pmu_ids, kind=Channel.Kind.PHASOR)
        .order_by("pmu_id", "order")
        .values_list("pmu_id", "measures", "line__name")
    )
    rank: Counter[int] = Counter()
    found: list[tuple[int, int, str | None]] = []
    for pmu_id, measures, line in rows:
        position = rank[pmu_id]
        rank[pmu_id] += 1
        if measures == Channel.Measures.LINE_CURRENT:
            found.append((index[pmu_id], position, line))
    return sorted(found, key=lambda c: (c[0], c[1]))


def default_plan(pmu_ids: tuple[int, ...]) -> DetectorPlan:
    """Return the plan used until the settings are loaded: defaults, 60 Hz."""
    topology = GridTopology(lines=(), pmu_buses=(None,) * len(pmu_ids))
    return DetectorPlan(pmu_ids, FastDetectorConfig(), tuple(f"PMU {p}" for p in pmu_ids), "default", topology)


def load_topology(pmu_ids: Sequence[int], pmus: dict[int, Any], nominal_hz: float) -> GridTopology:
    """Return the correlator's grid: lines and buses of the grid model, PMU buses, the units where known."""
    from wams.grid import demo
    from wams.grid.models import Bus, Line

    lines = tuple(
        (name, int(a), int(b)) for name, a, b in Line.objects.values_list("name", "from_bus__number", "to_bus__number")
    )
    buses = dict(Bus.objects.values_list("number", "substation__code"))
    pmu_buses = tuple(pmus[p].bus.number if p in pmus and pmus[p].bus is not None else None for p in pmu_ids)
    # Unit data is known for the demo grid only (the IEEE 39-bus case); elsewhere no MW estimate.
    units = tuple(Unit(*row) for row in demo.generation_units() if row[1] in buses)
    response = demo.FREQUENCY_RESPONSE_MW_PER_HZ if units else None
    return GridTopology(
        lines=lines,
        pmu_buses=pmu_buses,
        substation_of_bus={int(k): str(v) for k, v in buses.items()},
        units=units,
        nominal_hz=nominal_hz,
        frequency_response_mw_per_hz=response,
    )


def _settings_by_pmu(pmu_ids: Sequence[int]) -> tuple[list[Any], Any]:
    """Return each PMU's DetectorSettings (lowest priority group, else the defaults) and the defaults."""
    from wams.detection.models import DetectorSettings

    rows = list(DetectorSettings.objects.select_related("group").prefetch_related("group__pmus"))
    default = next((r for r in rows if r.group_id is None), None) or DetectorSettings()
    chosen: dict[int, Any] = {}
    for row in sorted((r for r in rows if r.group is not None), key=lambda r: (r.priority, r.pk)):
        assert row.group is not None
        for pmu in row.group.pmus.all():
            chosen.setdefault(pmu.pk, row)
    return [chosen.get(p, default) for p in pmu_ids], default


def load_plan(pmu_ids: tuple[int, ...]) -> DetectorPlan:
    """Build the bank configuration of these PMUs (in this order) from the grid model and the settings."""
    from wams.grid.models import Corridor, Pmu

    pmus = {p.pk: p for p in Pmu.objects.filter(pk__in=pmu_ids).select_related("substation", "bus")}
    per_pmu, default = _settings_by_pmu(pmu_ids)
    active = np.array([p in pmus and pmus[p].enabled and s.enabled for p, s in zip(pmu_ids, per_pmu)], dtype=bool)
    never = np.where(active, 0.0, np.inf)  # added to pickup times: a disabled PMU never raises

    def column(name: str) -> np.ndarray:
        return np.array([float(getattr(s, name)) for s in per_pmu], dtype=np.float64)

    nominal = Counter(pmus[p].nominal_frequency_hz for p in pmu_ids if p in pmus).most_common(1)
    index = {p: i for i, p in enumerate(pmu_ids)}
    pairs: list[tuple[int, int]] = []
    warning_deg: list[float] = []
    alarm_deg: list[float] = []
    corridors = Corridor.objects.filter(from_pmu_id__in=pmu_ids, to_pmu_id__in=pmu_ids).order_by("pk")
    for corridor in corridors:
        i, j = index[corridor.from_pmu_id], index[corridor.to_pmu_id]
        if active[i] and active[j]:
            pairs.append((i, j))
            alarm_deg.append(corridor.angle_limit_deg)
            warning_deg.append(corridor.angle_limit_deg * per_pmu[i].angle_warning_fraction)
    areas: dict[str, list[int]] = {}
    for i, p in enumerate(pmu_ids):
        area = pmus[p].substation.area if p in pmus else ""
        if area and active[i]:
            areas.setdefault(area, []).append(i)
    groups = [areas[a] for a in sorted(areas)] if len(areas) >= 2 else []
    currents = current_channels(pmu_ids)
    config = FastDetectorConfig(
        nominal_hz=float(nominal[0][0]) if nominal else 60.0,
        frequency=FrequencyConfig(
            warning_deviation_hz=column("frequency_warning_deviation_hz"),
            alarm_deviation_hz=column("frequency_alarm_deviation_hz"),
            pickup_s=column("frequency_pickup_s") + never,
        ),
        rocof=RocofConfig(
            window_s=float(default.rocof_window_s),
            warning_hz_per_s=column("rocof_warning_hz_per_s"),
            alarm_hz_per_s=column("rocof_alarm_hz_per_s"),
            pickup_s=RocofConfig().pickup_s + never,  # ignore one-frame spikes across phase jumps
        ),
        voltage=VoltageConfig(
            sag_warning_pu=column("voltage_sag_warning_pu"),
            sag_alarm_pu=column("voltage_sag_alarm_pu"),
            swell_warning_pu=column("voltage_swell_warning_pu"),
            swell_alarm_pu=column("voltage_swell_alarm_pu"),
            pickup_s=column("voltage_pickup_s") + never,
        ),
        angle=AngleSeparationConfig(
            pairs=pairs,
            warning_deg=np.array(warning_deg),
            alarm_deg=np.array(alarm_deg),
            pickup_s=np.array([per_pmu[i].angle_pickup_s for i, _ in pairs]),
        ),
        line_trip=LineTripConfig(
            current_pmu_index=[c[0] for c in currents],
            # A disabled PMU's currents never trip either.
            min_current_a=np.array([10.0 if active[c[0]] else np.inf for c in currents]),
            angle_step_deg=np.where(active, column("line_trip_angle_step_deg"), np.inf),
        ),
        islanding=IslandingConfig(
            groups=groups,
            divergence_hz=float(default.islanding_divergence_hz),
            alarm_divergence_hz=float(default.islanding_alarm_divergence_hz),
        ),
        quality=DataQualityConfig(
            sync_pickup_s=0.1 + never,
            invalid_pickup_s=0.1 + never,
            stale_after_s=column("stale_after_s") + never,
        ),
    )
    names = tuple(pmus[p].station_name if p in pmus else f"PMU {p}" for p in pmu_ids)
    fingerprint = repr(
        (
            sorted((s.pk, s.__dict__.get("priority")) for s in per_pmu if s.pk),
            [_settings_values(s) for s in per_pmu],
            pairs,
            warning_deg,
            alarm_deg,
            groups,
            active.tolist(),
            config.nominal_hz,
            currents,
        )
    )
    topology = replace(load_topology(pmu_ids, pmus, config.nominal_hz), current_lines=tuple(c[2] for c in currents))
    return DetectorPlan(
        pmu_ids,
        config,
        names,
        fingerprint,
        topology,
        sustained_config(default),
        currents=tuple((c[0], c[1]) for c in currents),
    )


def sustained_config(default: Any) -> SustainedConfig:
    """Return the sustained off-nominal limits of the default DetectorSettings row."""
    return SustainedConfig(
        frequency_band_hz_at_60=float(default.sustained_frequency_band_hz),
        frequency_delay_s=float(default.sustained_frequency_delay_s),
        voltage_low_pu=float(default.sustained_voltage_low_pu),
        voltage_high_pu=float(default.sustained_voltage_high_pu),
        voltage_delay_s=float(default.sustained_voltage_delay_s),
    )


def _settings_values(row: Any) -> tuple[Any, ...]:
    """Return the field values of a settings row, for change detection."""
    return tuple(getattr(row, f.attname) for f in row._meta.concrete_fields)
