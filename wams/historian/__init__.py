"""The historian: stores every PMU sample in compressed column chunks and serves it back.

Public API (others call these; everything takes PMU ids, callers check access first):
- hand-off (pdc side): `handoff.submit_block(block)` / `await handoff.asubmit_block(block)`;
  the Celery task `tasks.persist_blocks` (beat, every second) stores what the pdc handed off.
- recent window: `recent.push_recent(block)` / `await recent.apush_recent_many(blocks)`,
  `recent.read_recent(pmu_id, seconds) -> SampleBlock | None`.
- storage: `services.ingest(block) -> int` (idempotent), `services.read_stored(pmu_id, start_us, end_us)`.
- queries: `query.query_traces(pmu_ids, channels, start, end, max_points=2000) -> list[Trace]`,
  `query.read_samples(pmu_id, start, end) -> SampleBlock | None`, `query.channel_names(...)`.
- exports: `export.iter_csv(...)` / `export.export_csv(...)`, `export.export_comtrade(...) -> ComtradeRecord`.
- storage policies: `policies.apply_storage_policy(policy_id)`, `policies.storage_usage()`, the beat
  task `tasks.enforce_storage_policies` and `manage.py storage_usage`.
"""
