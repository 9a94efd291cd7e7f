"""Group ``generator``: cost of the synthetic market that feeds the pipeline by default.

Why: the collector calls ``step`` every trade interval (0.1 s simulated) and ``book`` once per
snapshot, and at high ``--speed`` these calls, not the bus, bound how fast a demo or an
end-to-end test can run. The 5000/1000 ratio shows how ``book`` scales with depth.
"""

from __future__ import annotations

from bench.report import Figure
from bench.timing import Case, measure, measure_interleaved
from depthflow.collector.generator import MarketGenerator


def btc(levels: int) -> MarketGenerator:
    """A generator set up like the collector's default BTCFDUSD instrument."""
    return MarketGenerator(seed=7, start_price=60000.0, tick=0.01, levels=levels, depth_span=0.004)


def run() -> list[Figure]:
    """Time ``step(0.1)`` and ``book()`` at 1000 and 5000 levels."""
    gen = btc(1000)
    step = measure(lambda: gen.step(0.1), number=20, repeat=2000, budget_s=4.0)
    books = measure_interleaved(
        {"1000": Case(btc(1000).book), "5000": Case(btc(5000).book)}, repeat=1000, budget_s=8.0
    )
    book1000, book5000 = books["1000"], books["5000"]
    return [
        Figure.timing("gen_step_us", step),
        Figure.timing("gen_book1000_us", book1000),
        Figure.timing("gen_book5000_us", book5000),
        Figure("gen_book5000_vs_1000", round(book5000.median_us / book1000.median_us, 2), "x"),
    ]
