"""``peaks.zones.*`` → ``signal.fused.*``.

Dead letters, at once: whatever ``ZonesDetected`` refuses on decode (NaN, inf, negative depths or
volumes, an inverted value area ...), what the runtime refuses (venue, symbol, future), and any
input on which the fusion core fails closed (a non-finite intermediate) or whose signal would not
pass ``SignalFused``'s own validation. Nothing non-finite can reach risk from here.
"""

from __future__ import annotations

from depthflow.ai_fusion.config import FusionConfig
from depthflow.ai_fusion.fusion import ConfidenceMode, fuse
from depthflow.common.codec import invalid_values
from depthflow.common.messages import SignalFused, ZonesDetected, header_from
from depthflow.common.runtime import Delivery, Output
from depthflow.common.subjects import Subjects


class FusionHandlers:
    """Fuse the components of every zones message into one signal per message."""

    def __init__(self, cfg: FusionConfig, subjects: Subjects) -> None:
        self.cfg = cfg
        self.subjects = subjects
        self.modes: dict[str, ConfidenceMode] = {}

    async def on_zones_detected(self, msg: ZonesDetected, delivery: Delivery) -> list[Output]:
        with invalid_values("zones"):
            return [Output(self.subjects.signal_fused(msg.venue, msg.symbol), self._fuse(msg, delivery))]

    def _fuse(self, msg: ZonesDetected, delivery: Delivery) -> SignalFused:
        """The signal of one zones message; raises ``ValueError`` before any state changes if a
        component or the score is not finite."""
        cfg = self.cfg
        mode = self.modes.setdefault(msg.symbol, ConfidenceMode(cfg.enter_trading, cfg.exit_trading))
        fused = fuse(msg, cfg.weights, mode, cfg.action_threshold)
        return SignalFused(
            **header_from(msg),
            signal_id=f"{delivery.stream}-{delivery.seq}",
            score=fused.score,
            confidence=fused.confidence,
            side=fused.side,
            mode=fused.mode,
            components=fused.components,
            mid=msg.mid,
            best_bid=msg.best_bid,
            best_ask=msg.best_ask,
        )
