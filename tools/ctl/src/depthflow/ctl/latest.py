"""The latest book, trade profile and zones of a symbol as the live bus keeps them.

What ``depthflow plot`` draws without ``--replay``; a replay gets the same triple from
:mod:`depthflow.ctl.inprocess`.
"""

from __future__ import annotations

from typing import TypeVar

import nats.errors
from nats.js.errors import NotFoundError

from depthflow.common.bus import Bus
from depthflow.common.codec import Decoder
from depthflow.common.messages import BookBuckets, TradeProfile, ZonesDetected
from depthflow.devstack import ServerUrls

T = TypeVar("T")

Latest = tuple[BookBuckets, TradeProfile | None, ZonesDetected]
"""A book, the trade profile peaks held for it (None: no trades yet) and the zones made of them."""


async def latest_from_bus(urls: ServerUrls | str, prefix: str, venue: str, symbol: str) -> Latest:
    """Return the last book, profile and zones of ``symbol`` kept in JetStream.

    ``urls`` is the servers' :class:`ServerUrls` (or just a NATS URL). The
    profile may be missing (no trades yet); the book and zones may not, the picture would be empty.
    """
    url = urls if isinstance(urls, str) else urls.nats
    bus = await Bus.connect(url, prefix, name="depthflow-plot")
    try:
        s = bus.subjects

        async def last(stream: str, subject: str, dec: Decoder[T]) -> T | None:
            try:
                raw = await bus.js.get_last_msg(s.stream(stream), subject)
            except (NotFoundError, nats.errors.Error):
                return None
            return dec.decode(raw.data or b"")

        # zones first: the book read next is then the same one or one cadence newer, never older
        zones = await last("PEAKS", s.peaks_zones(venue, symbol), Decoder[ZonesDetected](ZonesDetected))
        book = await last("AGG", s.agg_book(venue, symbol), Decoder[BookBuckets](BookBuckets))
        profile = await last("AGG", s.agg_profile(venue, symbol), Decoder[TradeProfile](TradeProfile))
    finally:
        await bus.close()
    if book is None or zones is None:
        missing = " and ".join(n for n, m in (("book", book), ("zones", zones)) if m is None)
        raise LookupError(f"no {missing} for {venue}/{symbol} on the bus (is the pipeline running?)")
    return book, profile, zones
