"""Every frame of the real device captures decodes, and agrees with Wireshark's decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synchrophasor.compare import compare_capture, decode_capture
from tests.synchrophasor.helpers import PCAPS, requires_tshark, requires_vectors
from wams.synchrophasor import ConfigFrame, DataFrame

pytestmark = requires_vectors


@pytest.mark.parametrize("pcap", PCAPS, ids=lambda p: p.name)
def test_every_frame_of_capture_decodes_without_error(pcap: Path) -> None:
    result = decode_capture(pcap)
    assert result.errors == []
    assert result.count > 0
    assert any(isinstance(f, ConfigFrame) for f in result.frames.values())
    assert any(isinstance(f, DataFrame) for f in result.frames.values())


@requires_tshark
@pytest.mark.parametrize("pcap", PCAPS, ids=lambda p: p.name)
def test_capture_values_equal_wiresharks(pcap: Path) -> None:
    # The "otherport" capture uses a port Wireshark does not know: tell it, as an engineer would.
    ports = (4714, 4715, 4716, 4713, 4712) if "otherport" in pcap.name else ()
    result = compare_capture(pcap, ports)
    assert result.wireshark, "tshark decoded nothing"
    assert not [f for f in result.wireshark if f.malformed or not f.checksum_ok]
    assert result.missing == []
    assert result.diffs[:20] == []
    assert result.matched_data >= 1
