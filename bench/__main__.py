"""``python -m bench [--only GROUP]``: run the benchmark groups, print a table, record JSON.

Why one process for all groups: ratios are only comparable within one run on one machine state,
so a full run measures everything back to back and writes one ``latest.json``. ``--only`` exists
for iterating on one hot path; it merges into the existing file instead of dropping the rest.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench import (
    aggregator,
    analysis,
    codec,
    collector,
    generator,
    peaks,
    peaks_accuracy,
    peaks_ceiling,
    replay,
)
from bench.report import RESULTS, Figure, print_table, provenance, write

GROUPS: dict[str, Callable[[], list[Figure]]] = {
    "codec": codec.run,
    "aggregator": aggregator.run,
    "generator": generator.run,
    "collector": collector.run,
    "replay": replay.run,
    "analysis": analysis.run,
    "peaks": peaks.run,
    "peaks_accuracy": peaks_accuracy.run,
    "peaks_ceiling": peaks_ceiling.run,
}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen groups, print and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(GROUPS), help="run one group and merge into latest.json")
    args = parser.parse_args(argv)

    names = [args.only] if args.only else list(GROUPS)
    info = provenance()
    print(f"depthflow bench  commit {info['commit']}  {info['machine']}  {info['timestamp']}")
    figures: list[Figure] = []
    started = time.perf_counter_ns()
    for name in names:
        t0 = time.perf_counter_ns()
        group = GROUPS[name]()
        print_table(name, group)
        print(f"  ({(time.perf_counter_ns() - t0) / 1e9:.1f} s)")
        figures += group
    write(figures, merge=args.only is not None)
    total_s = (time.perf_counter_ns() - started) / 1e9
    print(f"\nwrote {RESULTS.relative_to(RESULTS.parents[2])} in {total_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
