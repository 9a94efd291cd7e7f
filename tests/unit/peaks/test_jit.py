"""``depthflow.peaks.jit.kernel``: a cached kernel sees a change to a kernel of another file.

Plain ``njit(cache=True)`` does not (the caller's cache is keyed by its own file), which is why the
peaks kernels, split over several modules and calling ``depthflow.common.pricing``, use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CALLEE = """
from numba import njit

@njit(cache=True)
def helper(x):
    return x + {step}
"""

CALLER = """
from pathlib import Path

from depthflow.peaks.jit import family_stamp, kernel
from callee import helper

here = Path(__file__).parent

@kernel(stamp=family_stamp([here / "callee.py", here / "caller.py"]))
def caller(x):
    return helper(x) * 2.0

print(caller(1.0))
"""


def run(folder: Path) -> str:
    # the caller's cache goes beside it (numba's __pycache__); the peaks kernels that importing
    # depthflow.peaks warms load from their own (a cache folder of its own made every run
    # compile them all afresh: a minute of this machine's two cores)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"PYTHONPATH": str(folder)}
    done = subprocess.run([sys.executable, str(folder / "caller.py")], env=env, capture_output=True,
                          text=True, check=True, timeout=300)
    return done.stdout.strip()


def test_a_cached_kernel_recompiles_when_a_kernel_it_calls_from_another_file_changes(tmp_path):
    (tmp_path / "caller.py").write_text(CALLER)
    (tmp_path / "callee.py").write_text(CALLEE.format(step=1.0))
    assert run(tmp_path) == "4.0"
    assert run(tmp_path) == "4.0"  # from the cache
    assert list((tmp_path / "__pycache__").glob("caller*.nbi"))
    (tmp_path / "callee.py").write_text(CALLEE.format(step=10.0))
    assert run(tmp_path) == "22.0"  # plain njit(cache=True) still says 4.0
