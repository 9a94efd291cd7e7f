"""Import every module of one service at image build, so numba writes its cache then.

Why: kernels with explicit signatures (the aggregator's, peaks') compile when their module is
imported; with ``cache=True`` and ``NUMBA_CACHE_DIR`` set, the compiled code is written once
here and loaded by every pod instead of compiled on each start. Kernels without a signature
compile on first call and are not warmed by this.

Usage: ``python warm.py <service>`` (the folder name: ``ai-fusion``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def warm(service: str) -> list[str]:
    """Import ``depthflow.<service>`` and all its submodules; return their names."""
    package = importlib.import_module(f"depthflow.{service.replace('-', '_')}")
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if info.name.endswith(".__main__"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    return names


if __name__ == "__main__":
    print(f"warmed {len(warm(sys.argv[1]))} modules")
