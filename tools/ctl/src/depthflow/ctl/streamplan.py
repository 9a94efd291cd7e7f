"""Stream retention for this deployment: the plan for the load the collector is configured for.

Why the ctl computes it: ``bootstrap`` creates the streams, and only here are the symbols
(``--symbols``), the collector's depth and cadence (its own config, file and environment alike)
and the disk the state folder sits on all known. The plan itself is
:mod:`depthflow.common.retention`'s; this module only chooses its inputs.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depthflow.collector.config import CollectorConfig
from depthflow.common.bus import StreamLimits, planned_limits
from depthflow.common.config import load_config
from depthflow.common.retention import GIB, Load, describe, plan_retention


@dataclass(frozen=True)
class PlannedStreams:
    """The limits ``bootstrap`` applies and the one line that tells the operator what they keep."""

    limits: dict[str, StreamLimits]
    description: str


def half_free_disk_gib(path: Path) -> float:
    """Half the free disk under ``path`` (or under its nearest existing parent: a first ``up``
    has not created the state folder yet), so the streams leave room for logs and databases."""
    existing = next(p for p in (path.resolve(), *path.resolve().parents) if p.exists())
    return shutil.disk_usage(existing).free / 2 / GIB


def plan_streams(
    symbols: int, disk_cap_gib: float | None = None, environ: Mapping[str, str] | None = None
) -> PlannedStreams:
    """Plan the streams for ``symbols`` within ``stream_budget_gib``, or within ``disk_cap_gib``
    when that is smaller.

    Raises :class:`~depthflow.common.config.ConfigError` for a bad setting and ``ValueError``
    (naming ``stream_budget_gib``) when the budget keeps some stream too short a time.
    """
    cfg = load_config(CollectorConfig, "collector", environ, needs=())
    load = Load(symbols=symbols, depth_levels=cfg.depth, snapshot_interval_s=cfg.snapshot_interval_s)
    configured = cfg.runtime.stream_budget_gib
    budget = configured if disk_cap_gib is None else min(configured, disk_cap_gib)
    try:
        limits = planned_limits(load, budget)
    except ValueError as exc:
        if budget < configured:
            raise ValueError(f"{exc} (the budget is half the free disk of the state folder,"
                             f" below stream_budget_gib {configured:g})") from None
        raise
    return PlannedStreams(limits, describe(plan_retention(load, int(budget * GIB))))
