"""Group ``codec``: MessagePack encode/decode of the largest and a typical small bus message.

Why these two: a 5000-level ``DepthSnapshot`` (~160 kB of float64 arrays) is the biggest payload
the pipeline moves, so it bounds the codec cost per book; ``SignalFused`` is a typical small
message, where the fixed per-message overhead dominates. Both go through the project's own
``depthflow.common.codec`` (one shared encoder, one reused decoder), i.e. what a handler pays.

``codec_depth5000_validate_us`` is the value validation alone (``DepthSnapshot.__post_init__``:
finite, positive, sorted, aligned; issue 8), which every decode and every construction pays;
``codec_depth5000_validate_share`` is its part of the decode.
"""

from __future__ import annotations

import numpy as np

from bench.report import Figure
from bench.timing import measure
from depthflow.common.codec import Decoder, encode
from depthflow.common.messages import DepthSnapshot, SignalFused, f64_bytes

LEVELS = 5000
TS = 1_700_000_000_000_000_000


def depth_snapshot(levels: int = LEVELS, seed: int = 1) -> DepthSnapshot:
    """A BTC-like snapshot with ``levels`` bids (descending) and asks (ascending)."""
    rng = np.random.default_rng(seed)
    offs = np.arange(levels) * 0.01
    bid_px, ask_px = 59999.99 - offs, 60000.00 + offs
    bid_qty, ask_qty = (np.round(rng.lognormal(-1.5, 1.0, size=levels), 5) for _ in range(2))
    return DepthSnapshot(
        symbol="BTCFDUSD",
        venue="binance",
        ts_event=TS,
        ts_init=TS + 1_000,
        origin_ts=TS,
        last_update_id=42,
        bid_px=f64_bytes(bid_px),
        bid_qty=f64_bytes(bid_qty),
        ask_px=f64_bytes(ask_px),
        ask_qty=f64_bytes(ask_qty),
        known_low=float(bid_px[-1]),
        known_high=float(ask_px[-1]),
    )


def signal() -> SignalFused:
    """A typical fused signal with four weighted components."""
    return SignalFused(
        symbol="BTCFDUSD",
        venue="binance",
        ts_event=TS,
        ts_init=TS + 1_000,
        origin_ts=TS,
        signal_id="sig-000000000042",
        score=0.37,
        confidence=0.81,
        side="BUY",
        mode="LEARNING",
        components={"book_imbalance": 0.42, "support": 0.3, "trade_flow": 0.55, "momentum": -0.1},
        mid=60000.005,
        best_bid=59999.99,
        best_ask=60000.02,
    )


def run() -> list[Figure]:
    """Time encode and decode of the depth snapshot, and a round trip of the signal."""
    snap = depth_snapshot()
    payload = encode(snap)
    depth_decoder: Decoder[DepthSnapshot] = Decoder(DepthSnapshot)
    if depth_decoder.decode(payload) != snap:
        print("WARNING: codec: DepthSnapshot does not survive a round trip")

    sig = signal()
    sig_decoder: Decoder[SignalFused] = Decoder(SignalFused)
    if sig_decoder.decode(encode(sig)) != sig:
        print("WARNING: codec: SignalFused does not survive a round trip")

    enc = measure(lambda: encode(snap), number=10, repeat=3000, budget_s=2.5)
    dec = measure(lambda: depth_decoder.decode(payload), number=10, repeat=3000, budget_s=2.5)
    val = measure(snap.__post_init__, number=10, repeat=3000, budget_s=2.5)
    rt = measure(lambda: sig_decoder.decode(encode(sig)), number=200, repeat=3000, budget_s=2.5)
    mb = len(payload) / 1e6
    return [
        Figure.timing("codec_depth5000_encode_us", enc),
        Figure.timing("codec_depth5000_decode_us", dec),
        Figure.timing("codec_depth5000_validate_us", val),
        Figure("codec_depth5000_validate_share", round(val.median_us / dec.median_us, 2), "ratio"),
        Figure("codec_depth5000_bytes", len(payload), "B"),
        Figure("codec_depth5000_encode_mb_per_s", round(mb / (enc.median_us / 1e6), 1), "MB/s"),
        Figure("codec_depth5000_decode_mb_per_s", round(mb / (dec.median_us / 1e6), 1), "MB/s"),
        Figure.timing("codec_signal_roundtrip_us", rt),
        Figure("codec_signal_bytes", len(encode(sig)), "B"),
    ]
