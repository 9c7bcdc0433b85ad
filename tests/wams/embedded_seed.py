"""Seed an embedded demo database: stored history for every demo PMU and a downstream output stream.

Run inside the site's own settings: `manage.py shell -c "from tests.wams.embedded_seed import seed; ..."`.
"""

from __future__ import annotations

import json
import time

from django.db.models import Count, Q

from tests.historian.helpers import make_block
from wams.grid.models import Channel, Pmu
from wams.historian.services import ingest_many
from wams.pdc.models import OutputStream

BLOCK_S = 30


def seed(output_port: int, export_values: int, idcode: int = 9001, gap_s: int = 900) -> None:
    """Store history whose full CSV export holds about `export_values` values; print the window as JSON."""
    pmus = list(
        Pmu.objects.select_related("stream").annotate(
            phasors=Count("channels", filter=Q(channels__kind=Channel.Kind.PHASOR)),
            analogs=Count("channels", filter=Q(channels__kind=Channel.Kind.ANALOG)),
            digitals=Count("channels", filter=Q(channels__kind=Channel.Kind.DIGITAL)),
        )
    )
    output = OutputStream.objects.create(name="downstream", idcode=idcode, host="127.0.0.1", port=output_port)
    output.pmus.set(pmus)
    fps = 30
    per_instant = sum(3 + 2 * p.phasors + p.analogs + p.digitals for p in pmus)
    span_s = max(BLOCK_S, export_values // (per_instant * fps) // BLOCK_S * BLOCK_S)
    end_s = (int(time.time()) - gap_s) // BLOCK_S * BLOCK_S
    start_s = end_s - span_s
    for index, pmu in enumerate(pmus):
        blocks = [
            make_block(
                pmu.pk,
                start_us=(start_s + k * BLOCK_S) * 1_000_000,
                n=BLOCK_S * fps,
                fps=fps,
                n_phasors=pmu.phasors,
                n_analogs=pmu.analogs,
                n_digitals=pmu.digitals,
                seed=index * 100_000 + k,
            )
            for k in range(span_s // BLOCK_S)
        ]
        ingest_many(blocks)
    print(
        json.dumps(
            {
                "pmus": [p.pk for p in pmus],
                "start_s": start_s,
                "end_s": end_s,  # the first instant after the stored ones
                "instants": span_s * fps,
                "values": per_instant * span_s * fps,
            }
        )
    )
