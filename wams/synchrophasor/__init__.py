"""IEEE C37.118.2-2011 synchrophasor codec and transports (pure Python + numpy, no Django).

Decode and encode every frame type (versions 1 and 2):

    cfg = decode_frame(cfg2_bytes)                 # ConfigFrame
    frame = decode_frame(data_bytes, cfg)          # DataFrame: .pmus[i].phasors (complex, V/A)
    raw = encode_frame(frame, cfg)                 # bytes, CHK included
    batch = decode_data_batch(cfg, many_frames)    # numpy arrays for thousands of frames

Cut a TCP byte stream into frames with `StreamReader().feed(chunk)`. Talk to devices with the
asyncio transports `PmuServer` (PMU side) and `PdcClient` (PDC side). Every bad input raises
`C37118Error` (or a subclass) carrying a short `.reason`.
"""

from wams.synchrophasor.batch import DataBatch, batch_dtype, decode_data_batch
from wams.synchrophasor.crc import crc_ccitt, crc_ccitt_rows
from wams.synchrophasor.decode import Cfg3Assembler, FrameHeader, check_frame, decode_frame, peek_header
from wams.synchrophasor.encode import encode_cfg3_fragments, encode_config, encode_frame
from wams.synchrophasor.errors import (
    C37118Error,
    ConfigMismatchError,
    CrcError,
    EncodeError,
    FrameSizeError,
    MissingConfigError,
    SyncError,
    TruncatedFrameError,
)
from wams.synchrophasor.frames import (
    AnalogChannel,
    AnalogKind,
    Command,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    Frame,
    FrameType,
    HeaderFrame,
    PhasorChannel,
    PhasorComponent,
    PmuConfig,
    PmuData,
)
from wams.synchrophasor.layout import DataLayout, layout_of
from wams.synchrophasor.stat import (
    DataError,
    MessageTimeQuality,
    Stat,
    TriggerReason,
    UnlockTime,
    decode_stat_array,
    make_fracsec,
    make_stat,
)
from wams.synchrophasor.stream import StreamReader
from wams.synchrophasor.transport import DataSource, LinkClosed, PdcClient, PmuServer

__all__ = [
    "AnalogChannel",
    "AnalogKind",
    "C37118Error",
    "Cfg3Assembler",
    "Command",
    "CommandFrame",
    "ConfigFrame",
    "ConfigMismatchError",
    "CrcError",
    "DataBatch",
    "DataError",
    "DataFrame",
    "DataLayout",
    "DataSource",
    "DigitalWord",
    "EncodeError",
    "Frame",
    "FrameHeader",
    "FrameSizeError",
    "FrameType",
    "HeaderFrame",
    "LinkClosed",
    "MessageTimeQuality",
    "MissingConfigError",
    "PdcClient",
    "PhasorChannel",
    "PhasorComponent",
    "PmuConfig",
    "PmuData",
    "PmuServer",
    "Stat",
    "StreamReader",
    "SyncError",
    "TriggerReason",
    "TruncatedFrameError",
    "UnlockTime",
    "batch_dtype",
    "check_frame",
    "crc_ccitt",
    "crc_ccitt_rows",
    "decode_data_batch",
    "decode_frame",
    "decode_stat_array",
    "encode_cfg3_fragments",
    "encode_config",
    "encode_frame",
    "layout_of",
    "make_fracsec",
    "make_stat",
    "peek_header",
]
