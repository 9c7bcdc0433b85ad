"""Run in the topology test's own database (DATABASE_URL): provision PMUs, read back what was stored.

    python -m tests.wams.topology_db provision PORT:IDCODE ...   -> {"IDCODE": pmu_id, ...}
    python -m tests.wams.topology_db stored PMU_ID ...           -> {"PMU_ID": {"t": [us...], "f": [Hz...]}, ...}

The test process keeps pytest-django's database; this one talks to the database the supervised
processes use, so the test never shares tables with other tests.
"""

from __future__ import annotations

import json
import os
import sys

import django


def provision(pairs: list[str]) -> dict[str, int]:
    from tests.pdc.grid import provision as provision_stream

    pmus = {}
    for pair in pairs:
        port, idcode = (int(part) for part in pair.split(":"))
        pmus[str(idcode)] = provision_stream(port, idcode)[1].id
    return pmus


def stored(pmu_ids: list[str]) -> dict[str, dict[str, list[float]]]:
    from wams.historian.services import read_stored

    out = {}
    for pmu_id in pmu_ids:
        data = read_stored(int(pmu_id), 0, 2**62)
        stamps = [] if data is None else data.timestamp_us.tolist()
        frequencies = [] if data is None else data.frequency_hz.tolist()
        out[pmu_id] = {"t": stamps, "f": frequencies}
    return out


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    command, *args = sys.argv[1:]
    result = provision(args) if command == "provision" else stored(args)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
