"""Column-chunk codec: a SampleBlock to compressed bytes and back (pure numpy, no Django).

A chunk holds one PMU's samples as columns. Every float column is stored as float32 (the C37.118
wire precision) transformed for compression (bit pattern delta, zigzag, byte shuffle) plus, when
the float64 value is not exactly a float32, an XOR residual of the float64 bit pattern. Phasors
are stored rectangular when both parts are exact float32s, else as polar float32 (magnitude,
angle in rad) plus the XOR residual of the rebuilt complex value. The residual is all zeros for
data that came off the wire as float32, so it costs almost nothing; with it the round trip is
bit-exact for any input. Columns are grouped in sections compressed separately (zstd, zlib or lzma),
so a query decompresses only the sections it needs.
"""

from wams.historian.codec.arrays import concat_blocks, pack_block, take_samples, unique_samples, unpack_block
from wams.historian.codec.batch import ChunkParts, decode_parts_many
from wams.historian.codec.chunk import (
    decode_analogs,
    decode_block,
    decode_digitals,
    decode_frequency,
    decode_phasors,
    decode_time,
    encode_block,
)
from wams.historian.codec.format import (
    COMPRESSIONS,
    SECTION_ANALOGS,
    SECTION_DIGITALS,
    SECTION_FREQUENCY,
    SECTION_PHASORS,
    SECTION_TIME,
    ChunkFormatError,
    ChunkHeader,
    read_header,
)

__all__ = [
    "COMPRESSIONS",
    "SECTION_ANALOGS",
    "SECTION_DIGITALS",
    "SECTION_FREQUENCY",
    "SECTION_PHASORS",
    "SECTION_TIME",
    "ChunkFormatError",
    "ChunkHeader",
    "ChunkParts",
    "concat_blocks",
    "decode_analogs",
    "decode_block",
    "decode_digitals",
    "decode_frequency",
    "decode_parts_many",
    "decode_phasors",
    "decode_time",
    "encode_block",
    "pack_block",
    "read_header",
    "take_samples",
    "unique_samples",
    "unpack_block",
]
