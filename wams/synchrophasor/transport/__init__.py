"""asyncio transports: `PmuServer` (device side) and `PdcClient` (concentrator side)."""

from wams.synchrophasor.transport.client import LinkClosed, PdcClient
from wams.synchrophasor.transport.clock import ReportingClock, now_soc_fraction
from wams.synchrophasor.transport.server import DataSource, PmuServer, default_source

__all__ = [
    "DataSource",
    "LinkClosed",
    "PdcClient",
    "PmuServer",
    "ReportingClock",
    "default_source",
    "now_soc_fraction",
]
