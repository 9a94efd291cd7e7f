"""Benchmarks of depthflow's hot paths: ``python -m bench [--only GROUP]``.

Why a package of plain modules rather than pytest-benchmark: the figures are recorded to
``bench/results/latest.json`` and compared as ratios within one run, on a noisy 2-core machine,
so we want full control over warm-up, repeats and which statistics are reported. Nothing here
asserts a wall-clock time; a benchmark reports, it never fails a build on speed.
"""
