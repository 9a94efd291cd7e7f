"""A KV bucket's live keys, listed from the server's own count of the bucket's subjects.

Why not nats-py's ``KeyValue.keys()``: it lists keys with a watch and stops at the watch's "no
initial values" marker, which nats-py sends when the server reports nothing pending and the
client has received nothing yet. That also holds while the values are on their way, so the list
can come back short or empty: seen in CI as a refusal naming "venues: none" with a venue stored.
Retiring a lane listed its confirmations that way, and one left behind blocks every later switch.
The same race made a route watch answer "no route" (:meth:`routing.RouteStore.watch`). The
stream's subject counts are one answer from the server; each key found is then read, so deleted
and purged keys (whose markers stay in the stream) are left out.
"""

from __future__ import annotations

import contextlib

from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

__all__ = ["live_entries"]


async def live_entries(kv: KeyValue, prefix: str = "") -> dict[str, bytes]:
    """``key -> value`` of every key of ``kv`` starting with ``prefix`` that holds a value,
    in key order. (``_stream`` and ``_pre``: the bucket's stream and subject prefix, as the KV
    protocol names them, ``KV_<bucket>`` and ``$KV.<bucket>.``.)"""
    tokens = prefix[: prefix.rfind(".") + 1]  # a subject filter matches whole tokens only
    info = await kv._js.stream_info(kv._stream, subjects_filter=f"{kv._pre}{tokens}>")
    out: dict[str, bytes] = {}
    for subject in sorted(info.state.subjects or {}):
        key = subject[len(kv._pre):]
        if not key.startswith(prefix):
            continue
        with contextlib.suppress(KeyNotFoundError, KeyDeletedError, NotFoundError):
            entry = await kv.get(key)
            if entry.value is not None:
                out[key] = entry.value
    return out
