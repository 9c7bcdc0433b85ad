"""Engineer's C37.118 tools: decode frames from a file, test a live connection."""

from __future__ import annotations

import asyncio
import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wams.synchrophasor.dump import decode_any
from wams.synchrophasor.tester import probe_link


class Command(BaseCommand):
    """`c37118 decode FILE` prints one JSON object per frame; `c37118 connect` tests a device."""

    help = (
        "IEEE C37.118 tools. 'decode FILE' (.pcap/.pcapng, .hex, or - for raw bytes on stdin) prints one "
        "JSON object per frame; 'connect HOST PORT --idcode N [--udp-port P] [--frames K]' fetches header "
        "and configuration, streams K frames and reports rate, latency, gaps, late and bad frames."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Declare the two sub-commands."""
        sub = parser.add_subparsers(dest="action", required=True)
        decode = sub.add_parser("decode", help="decode frames from a capture, hex dump or stdin")
        decode.add_argument("file", help=".pcap/.pcapng, .hex, a raw frame file, or - for stdin")
        connect = sub.add_parser("connect", help="test a live PMU/PDC connection")
        connect.add_argument("host")
        connect.add_argument("port", type=int)
        connect.add_argument("--idcode", type=int, required=True, help="IDCODE of the data stream")
        connect.add_argument("--udp-port", type=int, default=None, help="receive data by UDP on this port")
        connect.add_argument("--frames", type=int, default=100, help="data frames to receive")
        connect.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
        connect.add_argument("--late-ms", type=float, default=1000.0, help="latency above which a frame is late")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the chosen sub-command."""
        if options["action"] == "decode":
            self._decode(options["file"])
        else:
            self._connect(options)

    def _emit(self, obj: dict[str, Any]) -> None:
        """Write one JSON object on its own line."""
        self.stdout.write(json.dumps(obj, allow_nan=False, default=str))

    def _decode(self, name: str) -> None:
        """Decode every frame of the file (or stdin)."""
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"no such file: {name}")
            data = path.read_bytes()
        for obj in decode_any(data, name):
            self._emit(obj)

    def _connect(self, options: dict[str, Any]) -> None:
        """Run the connection tester and print its report as JSON."""
        if options["frames"] < 1:
            raise CommandError("--frames must be at least 1")
        report = asyncio.run(
            probe_link(
                options["host"],
                options["port"],
                options["idcode"],
                frames=options["frames"],
                udp_port=options["udp_port"],
                timeout_s=options["timeout"],
                late_after_ms=options["late_ms"],
            )
        )
        self.stdout.write(json.dumps(report.to_dict(), indent=2, default=str))
        if not report.connected or report.error:
            raise CommandError(report.error or "no connection")
