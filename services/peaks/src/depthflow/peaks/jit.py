"""``@kernel``: numba's ``njit(cache=True)`` for kernels that call kernels of other files.

Why not plain ``njit(cache=True)``: numba keys a cached kernel by the source of its own file
only, yet compiles the kernels it calls into it. A kernel whose callee lives in another file
keeps running the callee's old code from the cache after that file changes (numba issue 6845;
checked here: the cached caller still returned the old answer). The peaks kernels are split over
several small modules that call each other, and the bucket rule comes from
``depthflow.common.pricing``, so every peaks kernel is stamped with the sources of the whole
family: any change to one of them recompiles them all at the next import, and nothing stale
is ever loaded. In an installed image the sources never change, so the cache always hits.

``FAST``: reassociation (vectorised sums) without the flags that assume no NaN/inf (zero-volume
ratios are inf).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from numba import njit

__all__ = ["FAST", "family_stamp", "kernel"]

FAST = {"reassoc", "contract", "arcp", "nsz"}

F = TypeVar("F", bound=Callable[..., Any])


def _family() -> list[Path]:
    """Every source file a peaks kernel may compile in: this package's modules and the shared
    pricing rule (located without importing it)."""
    files = sorted(Path(__file__).parent.glob("*.py"))
    spec = importlib.util.find_spec("depthflow.common.pricing")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin))
    return files


def family_stamp(files: list[Path]) -> str:
    """A digest of the files' contents: what a cached kernel is valid for."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


_STAMP = family_stamp(_family())


@overload
def kernel(fn: F, /) -> F: ...


@overload
def kernel(*, stamp: str = ..., **options: Any) -> Callable[[F], F]: ...


def kernel(fn: F | None = None, /, *, stamp: str = _STAMP, **options: Any) -> F | Callable[[F], F]:
    """``njit(cache=True, **options)`` whose cache entries are valid only for ``stamp`` (by
    default the peaks family's, see the module doc). Use bare (``@kernel``) or with options
    (``@kernel(fastmath=FAST)``)."""

    def wrap(f: F) -> F:
        disp = njit(cache=True, **options)(f)
        cache_file = disp._cache._cache_file  # raises on a numba without it: never silently stale
        cache_file._source_stamp = (cache_file._source_stamp, stamp)
        return disp

    return wrap if fn is None else wrap(fn)
