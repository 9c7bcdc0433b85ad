"""`manage.py run_pdc` as a process: streams into the embedded historian and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from tests.pdc.fleet import pmu_block, start_pmu, stream_config
from tests.pdc.grid import provision
from tests.pdc.test_runner import db_wait_for
from wams.historian.services import stored_timestamps
from wams.pdc.models import LinkState

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """Return a DATABASE_URL naming the database this test runs on."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_run_pdc_streams_into_the_historian_and_stops_cleanly_on_sigterm() -> None:
    config = stream_config(611, [pmu_block(611, "A")])

    async def scenario() -> tuple[int, str, int]:
        server = await start_pmu(config)
        stream, pmu = await sync_to_async(provision)(server.ports["tcp"], 611)
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "REDIS_URL": "",
            "WAMS_PDC_BLOCK_SECONDS": "1",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_pdc",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

        def streaming() -> bool:
            return LinkState.objects.filter(stream=stream, state="streaming", frames_received__gt=60).exists()

        try:
            assert await db_wait_for(streaming, 30), "the pdc process never streamed"
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
            await server.stop()
        assert process.returncode == 0, output.decode()
        row = await sync_to_async(LinkState.objects.get)(stream=stream)
        stored = await sync_to_async(stored_timestamps)(pmu.id, 0, 2**62)
        return row.frames_received, row.last_error, len(stored)

    frames_received, last_error, stored = asyncio.run(scenario())
    assert last_error == "pdc stopped"
    # Every frame received was aligned and stored (the first may have been late; late ones are stored too).
    assert stored == frames_received
