"""Grid-model rows for pdc tests: a stream on a loopback port with one PMU and its bus voltage."""

from __future__ import annotations

import itertools

from tests.conftest import make_organisation, make_pmu, make_stream, make_substation
from wams.grid.models import Bus, Channel, CommunicationPath, Organisation, Pmu, Stream

_bus_numbers = itertools.count(9001)


def provision(
    port: int, idcode: int, pmu_idcode: int | None = None, owner: Organisation | None = None, **stream_fields: object
) -> tuple[Stream, Pmu]:
    """Create a 30 fps stream reachable on 127.0.0.1:port carrying one PMU with a 345 kV bus voltage."""
    owner = owner or make_organisation()
    stream = make_stream(owner=owner, idcode=idcode, reporting_rate_fps=30, **stream_fields)
    CommunicationPath.objects.create(stream=stream, name="fibre", host="127.0.0.1", port=port)
    substation = make_substation(owner=owner)
    bus = Bus.objects.create(number=next(_bus_numbers), substation=substation, base_kv=345.0)
    pmu = make_pmu(stream=stream, substation=substation, idcode=pmu_idcode or idcode, bus=bus)
    Channel.objects.create(
        pmu=pmu, kind=Channel.Kind.PHASOR, order=0, name="V1", measures=Channel.Measures.BUS_VOLTAGE, bus=bus, unit="V"
    )
    Channel.objects.create(pmu=pmu, kind=Channel.Kind.PHASOR, order=1, name="I1", measures="other", unit="A")
    return stream, pmu
