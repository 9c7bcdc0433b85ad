"""Queries: channels of PMUs over a time window, stored chunks merged with the recent window,
decimated to at most N buckets (min/max/mean) for plotting.

Channel names: `frequency_hz`, `rocof_hz_per_s`, `stat`, `phasor_<k>_magnitude` (V or A),
`phasor_<k>_angle_deg`, `analog_<k>`, `digital_<k>` (k = the channel's `order`). Callers check
access (e.g. `wams.grid.services.visible_pmus`) before passing PMU ids, and price large reads with
`wams.historian.budget` (`query_traces` does so itself).

- `channels`: channel names and the columns they read from a block;
- `columns`: one PMU's raw columns or samples over a window;
- `traces`: decimated traces of many PMUs in bounded memory.
"""

from wams.historian.query.channels import ChannelSpec, block_columns, channel_names, parse_channel
from wams.historian.query.columns import channel_counts, merged_columns, read_columns, read_samples
from wams.historian.query.traces import (
    Buckets,
    Trace,
    bucket_width_us,
    decimate,
    make_buckets,
    query_traces,
    reduce_buckets,
)

__all__ = [
    "Buckets",
    "ChannelSpec",
    "Trace",
    "block_columns",
    "bucket_width_us",
    "channel_counts",
    "channel_names",
    "decimate",
    "make_buckets",
    "merged_columns",
    "parse_channel",
    "query_traces",
    "read_columns",
    "read_samples",
    "reduce_buckets",
]
