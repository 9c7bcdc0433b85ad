"""Storage policies: downsample old data, drop data past its age, keep each policy's bytes under its limit.

A policy covers its PMUs and the PMUs of its device groups. Enforcement removes the oldest chunks
first and stops as soon as the policy holds, so right after `apply_storage_policy` a policy's
stored bytes are at most `max_bytes`, and less than one chunk below it (ingest running meanwhile
can add at most the chunks it writes). Short chunks from the pdc and compacted ones are removed
alike. Downsampling keeps, per 1/rate interval of the absolute time grid, the first sample:
real measured values with their own STAT, no averaging across angle wraps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from wams.grid.models import Pmu, StoragePolicy
from wams.historian import codec
from wams.historian.blocks import SampleBlock
from wams.historian.models import Chunk, datetime_from_us, us_from_datetime
from wams.historian.services import CHUNK_MAX_SPAN_US, _lock_pmu, encode_chunk, split_block

logger = logging.getLogger(__name__)

DELETE_BATCH = 500  # chunks deleted per statement
DOWNSAMPLE_GROUP_SPAN_US = CHUNK_MAX_SPAN_US  # raw chunks merged into one downsampled run: up to 10 minutes
DOWNSAMPLE_GROUP_CHUNKS = 1200  # and at most this many (10 minutes of 0.5 s chunks)
DOWNSAMPLE_MAX_CHUNKS = 5000  # raw chunks handled per policy run; the next run goes on


@dataclass
class PolicyReport:
    """What one application of a storage policy did."""

    policy_id: int
    chunks_deleted: int = 0
    bytes_freed: int = 0
    chunks_downsampled: int = 0  # raw chunks replaced by downsampled ones
    bytes_after: int = 0
    chunks_after: int = 0


@dataclass
class PolicyUsage:
    """What a policy's PMUs hold now."""

    policy_id: int | None
    name: str
    pmus: int
    chunks: int
    bytes: int
    max_bytes: int | None
    oldest: datetime | None
    newest: datetime | None


def policy_pmu_ids(policy: StoragePolicy) -> list[int]:
    """Return the ids of the PMUs a policy covers, directly or through its device groups."""
    direct = set(policy.pmus.values_list("pk", flat=True))
    grouped = set(Pmu.objects.filter(groups__storage_policies=policy).values_list("pk", flat=True))
    return sorted(direct | grouped)


def _chunks(pmu_ids: list[int]) -> QuerySet[Chunk]:
    return Chunk.objects.filter(pmu_id__in=pmu_ids)


def _delete_ids(ids: list[int]) -> None:
    for first in range(0, len(ids), DELETE_BATCH):
        with transaction.atomic():
            Chunk.objects.filter(pk__in=ids[first : first + DELETE_BATCH]).delete()


def _enforce_age(pmu_ids: list[int], cutoff_us: int, report: PolicyReport) -> None:
    """Delete chunks whose newest sample is older than the cutoff."""
    expired = _chunks(pmu_ids).filter(start_us__lt=cutoff_us, end_us__lt=cutoff_us)  # start bound: index range
    while batch := list(expired.order_by("start_us").values_list("pk", "size_bytes")[:DELETE_BATCH]):
        _delete_ids([pk for pk, _ in batch])
        report.chunks_deleted += len(batch)
        report.bytes_freed += sum(size for _, size in batch)


def _enforce_bytes(pmu_ids: list[int], max_bytes: int, report: PolicyReport) -> None:
    """Delete the oldest chunks until the policy's chunks add up to at most `max_bytes`."""
    # The total is read again after each batch: chunks replaced meanwhile (compaction) are counted as they are now.
    while (excess := (_chunks(pmu_ids).aggregate(total=Sum("size_bytes"))["total"] or 0) - max_bytes) > 0:
        oldest = _chunks(pmu_ids).order_by("start_us", "pk").values_list("pk", "size_bytes")[:DELETE_BATCH]
        doomed: list[int] = []
        for pk, size in oldest:
            doomed.append(pk)
            excess -= size
            report.bytes_freed += size
            if excess <= 0:
                break
        if not doomed:
            break
        _delete_ids(doomed)
        report.chunks_deleted += len(doomed)


def _select_first_per_interval(block: SampleBlock, rate_fps: int) -> SampleBlock:
    """Keep the first sample of each 1/rate_fps interval of the absolute time grid."""
    slot = (block.timestamp_us * rate_fps) // 1_000_000
    first = np.concatenate(([True], slot[1:] != slot[:-1]))
    return block if first.all() else codec.take_samples(block, first)


def _downsample_group(pmu_id: int, pks: list[int], rate_fps: int) -> None:
    """Replace a run of chunks of one PMU by chunks downsampled to `rate_fps`, in one transaction."""
    with transaction.atomic():
        _lock_pmu(pmu_id)  # the ingest lock: a compaction of the same chunks waits
        rows = Chunk.objects.filter(pk__in=pks).order_by("start_us").values_list("data", flat=True)
        blocks = [codec.decode_block(bytes(data), pmu_id) for data in rows]
        if len(blocks) != len(pks):
            return  # some were replaced or deleted meanwhile: the next run sees them as they are now
        block = codec.concat_blocks(blocks)
        kept = _select_first_per_interval(codec.unique_samples(block), rate_fps)
        Chunk.objects.filter(pk__in=pks).delete()
        Chunk.objects.bulk_create([encode_chunk(piece, downsampled_fps=rate_fps) for piece in split_block(kept)])


def _enforce_downsampling(pmu_ids: list[int], cutoff_us: int, rate_fps: int, report: PolicyReport) -> None:
    """Downsample chunks older than the cutoff that are raw or kept at a higher rate."""
    budget = DOWNSAMPLE_MAX_CHUNKS
    for pmu_id in pmu_ids:
        candidates = list(
            Chunk.objects.filter(pmu_id=pmu_id, end_us__lt=cutoff_us)
            .filter(Q(downsampled_fps=0) | Q(downsampled_fps__gt=rate_fps))
            .order_by("start_us")
            .values_list("pk", "start_us", "end_us", "n_phasors", "n_analogs", "n_digitals")[:budget]
        )
        budget -= len(candidates)
        group: list[int] = []
        group_start_us = 0
        shape: tuple[int, int, int] | None = None
        for pk, start_us, end_us, *counts in candidates:
            if group and (
                shape != tuple(counts)
                or len(group) >= DOWNSAMPLE_GROUP_CHUNKS
                or end_us - group_start_us >= DOWNSAMPLE_GROUP_SPAN_US
            ):
                _downsample_group(pmu_id, group, rate_fps)
                report.chunks_downsampled += len(group)
                group = []
            if not group:
                group_start_us = start_us
            shape = (counts[0], counts[1], counts[2])
            group.append(pk)
        if group:
            _downsample_group(pmu_id, group, rate_fps)
            report.chunks_downsampled += len(group)
        if budget <= 0:
            logger.info("historian: downsampling budget used up; the next run goes on")
            return


def apply_storage_policy(policy_id: int, now: datetime | None = None) -> PolicyReport:
    """Enforce one storage policy now: downsample, then age, then bytes (oldest data first)."""
    policy = StoragePolicy.objects.get(pk=policy_id)
    pmu_ids = policy_pmu_ids(policy)
    report = PolicyReport(policy_id=policy_id)
    now = now or timezone.now()
    if pmu_ids:
        if policy.downsample_after_days is not None and policy.downsample_rate_fps:
            cutoff = us_from_datetime(now - timedelta(days=policy.downsample_after_days))
            _enforce_downsampling(pmu_ids, cutoff, policy.downsample_rate_fps, report)
        if policy.max_age_days is not None:
            _enforce_age(pmu_ids, us_from_datetime(now - timedelta(days=policy.max_age_days)), report)
        if policy.max_bytes is not None:
            _enforce_bytes(pmu_ids, policy.max_bytes, report)
        totals = _chunks(pmu_ids).aggregate(chunks=Count("pk"), size=Sum("size_bytes"))
        report.chunks_after, report.bytes_after = totals["chunks"], totals["size"] or 0
    if report.chunks_deleted or report.chunks_downsampled:
        logger.info(
            "historian: policy %s deleted %d chunks (%d bytes), downsampled %d; now %d bytes",
            policy.name,
            report.chunks_deleted,
            report.bytes_freed,
            report.chunks_downsampled,
            report.bytes_after,
        )
    return report


def enforce_all_policies(now: datetime | None = None) -> list[PolicyReport]:
    """Apply every storage policy; a failing policy is logged and does not stop the others."""
    reports = []
    for policy_id in StoragePolicy.objects.order_by("pk").values_list("pk", flat=True):
        try:
            reports.append(apply_storage_policy(policy_id, now))
        except Exception:
            logger.exception("historian: storage policy %s could not be applied", policy_id)
    return reports


def _usage(policy_id: int | None, name: str, pmu_ids: list[int], max_bytes: int | None) -> PolicyUsage:
    totals = _chunks(pmu_ids).aggregate(
        chunks=Count("pk"), size=Sum("size_bytes"), oldest=Min("start_us"), newest=Max("end_us")
    )
    return PolicyUsage(
        policy_id=policy_id,
        name=name,
        pmus=len(pmu_ids),
        chunks=totals["chunks"],
        bytes=totals["size"] or 0,
        max_bytes=max_bytes,
        oldest=datetime_from_us(totals["oldest"]) if totals["oldest"] is not None else None,
        newest=datetime_from_us(totals["newest"]) if totals["newest"] is not None else None,
    )


def storage_usage() -> list[PolicyUsage]:
    """Return what each policy's PMUs hold, then what PMUs under no policy hold."""
    rows = []
    covered: set[int] = set()
    for policy in StoragePolicy.objects.order_by("name"):
        pmu_ids = policy_pmu_ids(policy)
        covered.update(pmu_ids)
        rows.append(_usage(policy.pk, policy.name, pmu_ids, policy.max_bytes))
    uncovered = sorted(set(Chunk.objects.order_by().values_list("pmu_id", flat=True).distinct()) - covered)
    rows.append(_usage(None, "(no policy)", uncovered, None))
    return rows
