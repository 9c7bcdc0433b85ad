"""Grid topology and devices: who owns what, what is measured, how to reach it, what can be operated."""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]
IDCODE_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65534)]

# Reporting rates allowed by IEEE C37.118.1 (Table 2 of the 2011 edition plus common higher rates).
REPORTING_RATES_FPS = {50: (1, 5, 10, 25, 50, 100), 60: (1, 2, 5, 10, 12, 15, 20, 30, 60, 120)}


class Organisation(models.Model):
    """A TSO, DSO or telco taking part in the system."""

    class Role(models.TextChoices):
        TSO = "tso", "Transmission system operator"
        DSO = "dso", "Distribution system operator"
        TELCO = "telco", "Telecom operator"

    name = models.CharField(max_length=100, unique=True)
    code = models.SlugField(max_length=20, unique=True, help_text="Short code used in names and the API.")
    role = models.CharField(max_length=10, choices=Role.choices)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """Attach a user to the organisation whose devices they see."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation}"


class Substation(models.Model):
    """A site with buses, PMUs and controllable devices."""

    name = models.CharField(max_length=100, unique=True)
    code = models.SlugField(max_length=20, unique=True)
    voltage_level_kv = models.FloatField(validators=[MinValueValidator(0.1), MaxValueValidator(1200)])
    latitude = models.FloatField(validators=[MinValueValidator(-90.0), MaxValueValidator(90.0)])
    longitude = models.FloatField(validators=[MinValueValidator(-180.0), MaxValueValidator(180.0)])
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="substations")
    area = models.CharField(max_length=40, blank=True, help_text="Control area, used for islanding groups.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Bus(models.Model):
    """An electrical node; `number` matches the network model (e.g. IEEE 39-bus numbering)."""

    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    substation = models.ForeignKey(Substation, on_delete=models.CASCADE, related_name="buses")
    base_kv = models.FloatField(validators=[MinValueValidator(0.1), MaxValueValidator(1200)])

    class Meta:
        ordering = ["number"]
        verbose_name_plural = "buses"

    def __str__(self) -> str:
        return self.name or f"Bus {self.number}"


class Line(models.Model):
    """A branch between two buses (line or transformer)."""

    name = models.CharField(max_length=100, unique=True)
    from_bus = models.ForeignKey(Bus, on_delete=models.CASCADE, related_name="lines_from")
    to_bus = models.ForeignKey(Bus, on_delete=models.CASCADE, related_name="lines_to")
    rating_mva = models.FloatField(validators=[MinValueValidator(0.0)])
    is_transformer = models.BooleanField(default=False)
    is_tie_line = models.BooleanField(default=False, help_text="Crosses a control-area boundary.")

    class Meta:
        ordering = ["name"]

    def clean(self) -> None:
        if self.from_bus_id is not None and self.from_bus_id == self.to_bus_id:
            raise ValidationError({"to_bus": "A line must join two different buses."})

    def __str__(self) -> str:
        return self.name


class Stream(models.Model):
    """A C37.118 data stream the pdc connects to: one PMU, or a PDC carrying several."""

    class Kind(models.TextChoices):
        PMU = "pmu", "PMU"
        PDC = "pdc", "PDC"

    class Transport(models.TextChoices):
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP (spontaneous)"
        HYBRID = "hybrid", "Hybrid (TCP commands, UDP data)"

    class PathPolicy(models.TextChoices):
        PRIORITY = "priority", "Lowest priority number first"
        LATENCY = "latency", "Lowest nominal latency"
        RELIABILITY = "reliability", "Highest reliability"
        COST = "cost", "Lowest cost"
        BANDWIDTH = "bandwidth", "Highest bandwidth"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=4, choices=Kind.choices, default=Kind.PMU)
    idcode = models.PositiveIntegerField(
        validators=IDCODE_VALIDATORS, help_text="IDCODE of the data stream (frames and commands)."
    )
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="streams")
    reporting_rate_fps = models.PositiveSmallIntegerField(default=30)
    transport = models.CharField(max_length=6, choices=Transport.choices, default=Transport.TCP)
    tls = models.BooleanField("TLS", default=False)
    enabled = models.BooleanField(default=True, help_text="Continuous connectivity; untick to deactivate.")
    path_policy = models.CharField(max_length=12, choices=PathPolicy.choices, default=PathPolicy.PRIORITY)

    class Meta:
        ordering = ["name"]

    def clean(self) -> None:
        allowed = sorted(set(REPORTING_RATES_FPS[50]) | set(REPORTING_RATES_FPS[60]))
        if self.reporting_rate_fps not in allowed:
            raise ValidationError({"reporting_rate_fps": f"Use one of {allowed} frames per second."})

    def __str__(self) -> str:
        return self.name


class Pmu(models.Model):
    """A phasor measurement unit inside a stream; its IDCODE is unique within the stream."""

    class PhasorFormat(models.TextChoices):
        INT16 = "int16", "16-bit integer"
        FLOAT32 = "float32", "32-bit float"

    class Notation(models.TextChoices):
        POLAR = "polar", "Polar"
        RECTANGULAR = "rectangular", "Rectangular"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="pmus")
    idcode = models.PositiveIntegerField(validators=IDCODE_VALIDATORS)
    station_name = models.CharField(max_length=16, help_text="STN field (16 characters in CFG-2).")
    substation = models.ForeignKey(Substation, on_delete=models.PROTECT, related_name="pmus")
    bus = models.ForeignKey(Bus, on_delete=models.SET_NULL, null=True, blank=True, related_name="pmus")
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="pmus")
    shared_with = models.ManyToManyField(Organisation, blank=True, related_name="shared_pmus")
    nominal_frequency_hz = models.PositiveSmallIntegerField(choices=[(50, "50 Hz"), (60, "60 Hz")], default=60)
    phasor_format = models.CharField(max_length=8, choices=PhasorFormat.choices, default=PhasorFormat.FLOAT32)
    phasor_notation = models.CharField(max_length=12, choices=Notation.choices, default=Notation.POLAR)
    frequency_format = models.CharField(max_length=8, choices=PhasorFormat.choices, default=PhasorFormat.FLOAT32)
    analog_format = models.CharField(max_length=8, choices=PhasorFormat.choices, default=PhasorFormat.FLOAT32)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["stream__name", "idcode"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "idcode"], name="pmu_idcode_unique_per_stream"),
        ]
        verbose_name = "PMU"

    def clean(self) -> None:
        if self.stream_id is None:
            return
        rate = self.stream.reporting_rate_fps
        if rate not in REPORTING_RATES_FPS.get(self.nominal_frequency_hz, ()):
            raise ValidationError(
                {
                    "nominal_frequency_hz": f"{rate} fps is not a C37.118.1 reporting rate for "
                    f"{self.nominal_frequency_hz} Hz systems "
                    f"(use {list(REPORTING_RATES_FPS[self.nominal_frequency_hz])})."
                }
            )
        clash = Pmu.objects.filter(stream_id=self.stream_id, idcode=self.idcode).exclude(pk=self.pk)
        if clash.exists():
            raise ValidationError({"idcode": f"IDCODE {self.idcode} is already used in stream {self.stream}."})
        if self.bus is not None and self.substation_id is not None and self.bus.substation_id != self.substation_id:
            raise ValidationError({"bus": "The bus must belong to the PMU's substation."})

    def base_voltage_v(self, phasor0_bus_kv: float | None = None) -> float:
        """Return the phase-to-neutral base voltage (V) of phasor 0, the one rule for its per-unit magnitudes.

        The base is that of the bus phasor 0 measures (its channel's bus), else the PMU's bus, else the
        substation's voltage level; NaN when unknown. `phasor0_bus_kv` passes the channel's bus base when
        the caller has read it for many PMUs at once (`phasor0_bus_kv_by_pmu`; 0 when the channel has no bus).
        """
        if phasor0_bus_kv is None and self.pk is not None:
            phasor0_bus_kv = phasor0_bus_kv_by_pmu([self.pk]).get(self.pk)
        base_kv = phasor0_bus_kv
        if not base_kv:
            base_kv = self.bus.base_kv if self.bus is not None else self.substation.voltage_level_kv
        return base_kv * 1000.0 / math.sqrt(3.0) if base_kv else math.nan

    def __str__(self) -> str:
        return self.station_name


def phasor0_bus_kv_by_pmu(pmu_ids: list[int] | None = None) -> dict[int, float | None]:
    """Return, per PMU whose phasor 0 channel sits on a bus, that bus's base voltage in kV (all PMUs when None)."""
    rows = Channel.objects.filter(kind=Channel.Kind.PHASOR, order=0, bus__isnull=False)
    if pmu_ids is not None:
        rows = rows.filter(pmu_id__in=pmu_ids)
    return dict(rows.values_list("pmu_id", "bus__base_kv"))


class Channel(models.Model):
    """One measured quantity of a PMU, in the order it appears in the configuration frame."""

    class Kind(models.TextChoices):
        PHASOR = "phasor", "Phasor"
        ANALOG = "analog", "Analog"
        DIGITAL = "digital", "Digital"

    class Measures(models.TextChoices):
        BUS_VOLTAGE = "bus_voltage", "Bus voltage"
        LINE_CURRENT = "line_current", "Line current"
        POWER = "power", "Power"
        STATUS = "status", "Status word"
        OTHER = "other", "Other"

    pmu = models.ForeignKey(Pmu, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    order = models.PositiveSmallIntegerField(help_text="Position among the PMU's channels of this kind.")
    name = models.CharField(max_length=16, help_text="CHNAM (16 characters).")
    measures = models.CharField(max_length=14, choices=Measures.choices)
    bus = models.ForeignKey(Bus, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    line = models.ForeignKey(Line, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    unit = models.CharField(max_length=10, help_text="V, A, MW, Mvar, ...")
    scale = models.FloatField(default=1.0, help_text="Conversion factor to engineering units (PHUNIT/ANUNIT).")

    class Meta:
        ordering = ["pmu", "kind", "order"]
        constraints = [
            models.UniqueConstraint(fields=["pmu", "kind", "order"], name="channel_order_unique"),
        ]

    def clean(self) -> None:
        if self.measures == self.Measures.BUS_VOLTAGE and self.bus_id is None:
            raise ValidationError({"bus": "A bus-voltage channel names its bus."})
        if self.measures == self.Measures.LINE_CURRENT and self.line_id is None:
            raise ValidationError({"line": "A line-current channel names its line."})
        if self.kind == self.Kind.PHASOR and self.unit not in {"V", "A"}:
            raise ValidationError({"unit": "Phasors are in V or A."})

    def __str__(self) -> str:
        return f"{self.pmu}:{self.name}"


class CommunicationPath(models.Model):
    """One way of reaching a stream; the stream's path policy chooses among them."""

    class Medium(models.TextChoices):
        FIBRE = "fibre", "Fibre"
        LTE = "lte", "LTE / 5G"
        SATELLITE = "satellite", "Satellite"
        LEASED = "leased", "Leased line"
        MICROWAVE = "microwave", "Microwave"
        PLC = "plc", "Power-line carrier"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="paths")
    name = models.CharField(max_length=60)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(validators=PORT_VALIDATORS)
    udp_port = models.PositiveIntegerField(
        validators=PORT_VALIDATORS, null=True, blank=True, help_text="Local UDP port for hybrid/UDP data."
    )
    transport = models.CharField(max_length=6, choices=Stream.Transport.choices, default=Stream.Transport.TCP)
    medium = models.CharField(max_length=10, choices=Medium.choices, default=Medium.FIBRE)
    nominal_latency_ms = models.FloatField(default=10.0, validators=[MinValueValidator(0.0)])
    bandwidth_kbps = models.FloatField(default=10_000.0, validators=[MinValueValidator(0.0)])
    reliability_pct = models.FloatField(default=99.9, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)])
    cost_per_gb = models.FloatField(default=0.0, validators=[MinValueValidator(0.0)])
    priority = models.PositiveSmallIntegerField(default=1, help_text="Lower is preferred.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["stream", "priority", "name"]
        constraints = [models.UniqueConstraint(fields=["stream", "name"], name="path_name_unique_per_stream")]

    def clean(self) -> None:
        if self.transport in {Stream.Transport.HYBRID, Stream.Transport.UDP} and self.udp_port is None:
            raise ValidationError({"udp_port": "Hybrid and UDP transports need a UDP port."})

    def __str__(self) -> str:
        return f"{self.stream} via {self.name}"


class Corridor(models.Model):
    """A pair of PMUs whose voltage-angle difference is watched against a limit."""

    name = models.CharField(max_length=100, unique=True)
    from_pmu = models.ForeignKey(Pmu, on_delete=models.CASCADE, related_name="corridors_from")
    to_pmu = models.ForeignKey(Pmu, on_delete=models.CASCADE, related_name="corridors_to")
    angle_limit_deg = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(180.0)])

    class Meta:
        ordering = ["name"]

    def clean(self) -> None:
        if self.from_pmu_id is not None and self.from_pmu_id == self.to_pmu_id:
            raise ValidationError({"to_pmu": "A corridor joins two different PMUs."})

    def __str__(self) -> str:
        return self.name


class ControllableDevice(models.Model):
    """A field device that can be operated over IEC 60870-5-104."""

    class Kind(models.TextChoices):
        BREAKER = "breaker", "Breaker"
        LOAD_BLOCK = "load_block", "Load block"
        GENERATOR_SETPOINT = "generator_setpoint", "Generator set point"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    substation = models.ForeignKey(Substation, on_delete=models.PROTECT, related_name="controllable_devices")
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="controllable_devices")
    line = models.ForeignKey(Line, on_delete=models.SET_NULL, null=True, blank=True, related_name="breakers")
    bus = models.ForeignKey(Bus, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    load_mw = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    iec104_host = models.CharField("IEC 104 host", max_length=255, default="127.0.0.1")
    iec104_port = models.PositiveIntegerField("IEC 104 port", default=2404, validators=PORT_VALIDATORS)
    common_address = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65534)])
    ioa = models.PositiveIntegerField("command IOA", validators=[MinValueValidator(1), MaxValueValidator(16_777_215)])
    status_ioa = models.PositiveIntegerField(
        "status IOA", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(16_777_215)]
    )
    tagged_out = models.BooleanField(default=False, help_text="Tagged out for work: commands are refused.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["iec104_host", "iec104_port", "common_address", "ioa"], name="iec104_address_unique"
            ),
        ]

    def clean(self) -> None:
        if self.kind == self.Kind.BREAKER and self.line_id is None:
            raise ValidationError({"line": "A breaker names the line it switches."})
        if self.kind == self.Kind.LOAD_BLOCK and (self.load_mw is None or self.bus_id is None):
            raise ValidationError({"load_mw": "A load block has a bus and a size in MW."})

    def __str__(self) -> str:
        return self.name


class DeviceGroup(models.Model):
    """A named set of PMUs that share settings (storage policy, detector thresholds, sharing)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    pmus = models.ManyToManyField(Pmu, blank=True, related_name="groups")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StoragePolicy(models.Model):
    """Limits on what the historian keeps for the PMUs it applies to."""

    name = models.CharField(max_length=100, unique=True)
    max_bytes = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty: no size limit.")
    max_age_days = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], help_text="Empty: keep forever."
    )
    downsample_after_days = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], help_text="Older data is downsampled."
    )
    downsample_rate_fps = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Rate kept for downsampled data."
    )
    pmus = models.ManyToManyField(Pmu, blank=True, related_name="storage_policies")
    groups = models.ManyToManyField(DeviceGroup, blank=True, related_name="storage_policies")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "storage policies"

    def clean(self) -> None:
        if (self.downsample_after_days is None) != (self.downsample_rate_fps is None):
            raise ValidationError("Give both the downsampling age and rate, or neither.")
        if self.max_bytes is None and self.max_age_days is None and self.downsample_after_days is None:
            raise ValidationError("A storage policy sets at least one limit.")

    def __str__(self) -> str:
        return self.name
