"""A seeded synthetic market: the default source when no exchange or recording is used.

Why realistic rather than random: the downstream analysis looks for liquidity walls and trade
clusters, so the generator must have them, or a demo and an end-to-end test prove nothing.

- The mid price is a geometric random walk with slowly varying volatility.
- Book depth decays away from the mid, with per-level noise; a few *liquidity walls* (large
  resting size at round-ish prices) drift with the mid, fade and are replaced.
- Trades arrive in clusters (a self-exciting intensity, like a Hawkes process), sized
  log-normally, priced around the touch, with the aggressor side biased by recent mid drift.

Everything comes from one ``numpy.random.Generator`` seeded per symbol, so a seed reproduces a
run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthflow.collector.publishing import BookView, TradeArrays

JUMP = 0.3  # intensity added per trade (1/s)
DECAY_S = 2.0  # decay time of the excitation; branching ratio JUMP * DECAY_S = 0.6


@dataclass
class _Wall:
    offset: float  # distance from mid in price units; negative = bid side
    size: float
    life: float  # seconds left


class MarketGenerator:
    """Generate books and trades for one symbol, advancing simulated time in steps."""

    def __init__(
        self,
        seed: int,
        start_price: float,
        tick: float,
        levels: int = 1000,
        spread_ticks: int = 1,
        depth_span: float = 0.004,
        trade_rate: float = 8.0,
        start_ns: int = 0,
        first_trade_id: int = 1,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.mid = start_price
        self.tick = tick
        self.levels = levels
        self.spread_ticks = spread_ticks
        self.depth_span = depth_span
        self.trade_rate = trade_rate
        self.now_ns = start_ns
        self.next_trade_id = first_trade_id
        self.vol = 0.0002
        self.intensity = trade_rate
        self.drift_memory = 0.0
        self.walls = [self._new_wall() for _ in range(6)]

    def _new_wall(self) -> _Wall:
        side = -1.0 if self.rng.random() < 0.5 else 1.0
        offset = side * self.rng.uniform(0.1, 0.9) * self.depth_span * self.mid
        return _Wall(offset, float(self.rng.lognormal(3.0, 0.5)), float(self.rng.uniform(20, 120)))

    def step(self, dt: float) -> TradeArrays:
        """Advance ``dt`` seconds: move the mid, age the walls, and return the trades."""
        rng = self.rng
        self.vol = float(np.clip(self.vol * np.exp(rng.normal(0, 0.05)), 0.00005, 0.001))
        ret = rng.normal(0.0, self.vol * np.sqrt(dt))
        self.mid = max(self.tick * 10, self.mid * float(np.exp(ret)))
        self.drift_memory = 0.9 * self.drift_memory + ret
        span = self.depth_span * self.mid
        for i, w in enumerate(self.walls):
            w.life -= dt
            side = np.sign(w.offset)
            w.offset += rng.normal(0, 0.02 * span) * np.sqrt(dt)
            # a wall that reaches the touch is traded through (or pulled); one that drifts out of
            # the book's range is forgotten; either way a new one appears elsewhere
            if w.life <= 0 or np.sign(w.offset) != side or not 0.05 * span < abs(w.offset) < span:
                self.walls[i] = self._new_wall()
        return self._trades(dt)

    def _trades(self, dt: float) -> TradeArrays:
        rng = self.rng
        # self-exciting intensity: each trade raises the rate by JUMP, decaying with DECAY_S; the
        # branching ratio JUMP * DECAY_S must stay below 1 or the rate explodes
        self.intensity = self.trade_rate + (self.intensity - self.trade_rate) * np.exp(-dt / DECAY_S)
        n = int(rng.poisson(self.intensity * dt))
        self.intensity += JUMP * n
        t0 = self.now_ns
        self.now_ns += int(dt * 1e9)
        ts = np.sort(rng.integers(t0, max(t0 + 1, self.now_ns), size=n)).astype(np.int64)
        p_sell = 1.0 / (1.0 + np.exp(self.drift_memory / max(self.vol, 1e-9) * 2.0))
        buyer_maker = (rng.random(n) < p_sell).astype(np.float64)
        half = self.spread_ticks * self.tick / 2
        slip = np.abs(rng.normal(0, 2, size=n)).round() * self.tick
        px = np.where(buyer_maker > 0, self.mid - half - slip, self.mid + half + slip)
        px = np.round(px / self.tick) * self.tick
        qty = np.round(rng.lognormal(-3.0, 1.2, size=n), 5) + 0.00001
        ids = np.arange(self.next_trade_id, self.next_trade_id + n, dtype=np.int64)
        self.next_trade_id += n
        return TradeArrays(ids, px, qty, ts, buyer_maker)

    def book(self, update_id: int = 0) -> BookView:
        """Return the current book: sparse levels, depth decaying from the touch, plus walls."""
        rng = self.rng
        tick = self.tick
        best_bid = np.floor((self.mid - self.spread_ticks * tick / 2) / tick) * tick
        best_ask = best_bid + self.spread_ticks * tick
        span_ticks = max(self.levels + 1, int(self.depth_span * self.mid / tick))
        sides = []
        for sign, best in ((-1.0, best_bid), (1.0, best_ask)):
            offs = np.sort(rng.choice(np.arange(1, span_ticks), size=self.levels - 1, replace=False))
            offs = np.concatenate(([0], offs))
            px = np.round((best + sign * offs * tick) / tick) * tick
            dist = offs * tick / self.mid
            qty = rng.lognormal(-1.5, 1.0, size=self.levels) * (0.3 + np.exp(-dist / 0.001))
            for w in self.walls:
                if np.sign(w.offset) != sign:
                    continue
                centre = self.mid + w.offset
                qty += w.size * np.exp(-0.5 * ((px - centre) / (0.0002 * self.mid)) ** 2)
            sides.append((px, np.round(qty, 5) + 0.00001))
        (bid_px, bid_qty), (ask_px, ask_qty) = sides
        return BookView(update_id, bid_px, bid_qty, ask_px, ask_qty, float(bid_px[-1]), float(ask_px[-1]))
