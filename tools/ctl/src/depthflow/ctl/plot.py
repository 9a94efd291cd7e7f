"""``depthflow plot``: one picture of what the peaks service saw for a symbol.

The bucketed book (bids and asks resting per price bucket) and the rolling trade profile (buys and
sells per bucket) are drawn as volume-by-price bars on a shared price axis, with what peaks made
of them on top: POC, value area, support and resistance zones (confidence as opacity; a wall, one
or two buckets holding one big order, also as a dash-dot line at its price), liquidity
vacuums, resonance zones, high/low volume nodes, the mid and the range the book is known over.

Two outputs from the same data: a PNG (matplotlib, drawn on an Agg canvas without pyplot, so no
display, no global backend state, safe from any thread) for reports and chat, and a
self-contained interactive HTML page (plotly, with plotly.js embedded so it opens offline) for
zooming into a 1-unit bucket inside a range hundreds of buckets tall.

The renderers take messages only: where they come from (the live bus, :mod:`depthflow.ctl.latest`,
or a recorded file run through the services' own handlers, :mod:`depthflow.ctl.inprocess`) is
the caller's business, so this module imports no service and draws what it is given.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from depthflow.common.messages import BookBuckets, PriceBand, TradeProfile, Zone, ZonesDetected, f64
from depthflow.ctl.prices import price_decimals, step_decimals

# --- colours: book sides in plain green/red, trades in darker shades so the two never blur -----
BID = "#2ca02c"
ASK = "#d62728"
BUY = "#1b7837"
SELL = "#b2182b"
SUPPORT = "#2ca02c"
RESISTANCE = "#d62728"
POC = "#6a3d9a"
VALUE_AREA = "#1f77b4"
RESONANCE = "#ff7f0e"
VACUUM = "#7f7f7f"
MID = "#000000"
KNOWN = "#555555"
WALL_STYLE = "-."  # a wall (one or two buckets: one big order) is a dash-dot line at its price

@dataclass(frozen=True)
class Drawn:
    """What :func:`render` put on the picture, so a caller (or a test) can check it without
    reading pixels: zones exactly as received, vacuums after clipping to the known range."""

    support: list[Zone]
    resistance: list[Zone]
    resonance: list[Zone]
    vacuums: list[PriceBand]  # clipped to [known_low, known_high]; empty ones dropped
    vacuums_dropped: int  # vacuums wholly outside the known range (peaks should send none)
    poc: float
    value_area: tuple[float, float]
    mid: float
    known_range: tuple[float, float]
    price_range: tuple[float, float]  # the y axis limits
    high_volume_nodes: list[float] = field(default_factory=list)
    low_volume_nodes: list[float] = field(default_factory=list)
    png: Path | None = None
    html: Path | None = None
    price_decimals: int = 2  # every price printed: the symbol's tick (see depthflow.ctl.prices)
    axis_decimals: int = 0  # price axis labels: the bucket size's, the finest step a bar has

    def price(self, value: float) -> str:
        """``value`` as every price on the picture is printed: at the symbol's precision."""
        return f"{value:.{self.price_decimals}f}"


# --- geometry shared by both renderers ---------------------------------------------------------


def _alpha(confidence: float) -> float:
    """Band opacity from confidence: never invisible (a weak zone is still a zone), never opaque
    (the bars underneath must stay readable)."""
    return 0.12 + 0.38 * min(1.0, max(0.0, confidence))


def clip_vacuums(vacuums: Sequence[PriceBand], low: float, high: float) -> tuple[list[PriceBand], int]:
    """Return the vacuums clipped to the known range and how many fell wholly outside it.

    Outside the known range the book is unknown, not empty: drawing a vacuum there would claim
    an absence of liquidity nobody observed.
    """
    kept: list[PriceBand] = []
    dropped = 0
    for v in vacuums:
        lo, hi = max(v.low, low), min(v.high, high)
        if hi > lo:
            kept.append(PriceBand(low=lo, high=hi))
        else:
            dropped += 1
    return kept, dropped


def book_bars(book: BookBuckets) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """``(bottom, height, qty)`` of the bid bars and of the ask bars.

    The best bid and the best ask usually fall in the same bucket (both in ``[k, k + size)``);
    drawn whole, the ask bar would hide the bid bar there. A bucket both sides hold is split:
    bids in its lower half, asks in its upper half.
    """
    size = book.bucket_size
    bid_px, bid_qty = f64(book.bid_px), f64(book.bid_qty)
    ask_px, ask_qty = f64(book.ask_px), f64(book.ask_qty)
    bid_shared, ask_shared = np.isin(bid_px, ask_px), np.isin(ask_px, bid_px)
    bid_h = np.where(bid_shared, size / 2, size)
    ask_h = np.where(ask_shared, size / 2, size)
    return (bid_px, bid_h, bid_qty), (ask_px + (size - ask_h), ask_h, ask_qty)


def _price_range(
    book: BookBuckets, profile: TradeProfile | None, zones: ZonesDetected
) -> tuple[float, float]:
    """The y limits: everything known (book range, traded range, zones), padded by 2 %, so no
    bar or band is ever cut off at the edge."""
    lows = [book.known_low, zones.value_area_low]
    highs = [book.known_high, zones.value_area_high]
    for arr in (f64(book.bid_px), f64(book.ask_px)):
        if arr.size:
            lows.append(float(arr[0]))
            highs.append(float(arr[-1]) + book.bucket_size)
    if profile is not None and len(profile.px):
        px = f64(profile.px)
        lows.append(float(px[0]))
        highs.append(float(px[-1]) + profile.bucket_size)
    for z in itertools.chain(zones.support, zones.resistance, zones.resonance):
        lows.append(z.low)
        highs.append(z.high)
    lows = [x for x in lows if x > 0]
    highs = [x for x in highs if x > 0]
    lo, hi = min(lows), max(highs)
    pad = max(0.02 * (hi - lo), book.bucket_size)
    return lo - pad, hi + pad


def _qty(v: float) -> str:
    """A quantity short enough for a label: decimals only where they matter."""
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"


def _when(zones: ZonesDetected) -> str:
    return datetime.fromtimestamp(zones.ts_event / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _title(book: BookBuckets, zones: ZonesDetected, source: str) -> str:
    t = f"{zones.symbol} ({zones.venue})  {_when(zones)}"
    if source:
        t += f"  source: {source}"
    if book.ts_event != zones.ts_event:  # live: the book may be one cadence newer than the zones
        t += f"  (book {(book.ts_event - zones.ts_event) / 1e9:+.1f}s)"
    return t


def _summary(book: BookBuckets, profile: TradeProfile | None, zones: ZonesDetected, d: Drawn) -> list[str]:
    px = d.price
    lines = [
        f"bid {px(zones.best_bid)}  ask {px(zones.best_ask)}  mid {px(zones.mid)}",
        f"bucket {book.bucket_size:g}  known {px(book.known_low)} .. {px(book.known_high)}",
        f"POC {px(zones.poc)}  VA {px(zones.value_area_low)} .. {px(zones.value_area_high)}",
        f"depth near mid: bid {zones.bid_depth_near:,.3f}  ask {zones.ask_depth_near:,.3f}",
    ]
    if profile is not None:
        lines.append(
            f"trades {profile.trades_in_window} in {profile.window_s / 3600:g} h window:"
            f" buy {zones.trade_buy_volume:,.3f}  sell {zones.trade_sell_volume:,.3f}"
        )
    else:
        lines.append("no trade profile yet: POC/VA come from the resting book")
    return lines


# --- PNG ---------------------------------------------------------------------------------------


def _nice_ticks(top: float) -> list[float]:
    """1-2-5 ticks up to ``top`` for the square-root axis: the default linear ticks bunch at the
    wall end and leave the small quantities, where most buckets are, unlabelled. Ticks closer
    than 7 % of the axis (in sqrt space) to the previous one are dropped, largest kept first."""
    if top <= 0:
        return [0.0]
    e = int(np.floor(np.log10(top)))
    cands = sorted((m * 10.0**k for k in range(e - 3, e + 1) for m in (1, 2, 5) if m * 10.0**k <= top),
                   reverse=True)
    kept: list[float] = []
    for t in cands:
        pos = np.sqrt(t / top)
        if pos >= 0.1 and (not kept or np.sqrt(kept[-1] / top) - pos >= 0.07):
            kept.append(t)
    return [0.0, *sorted(kept)]


def _bands(ax: object, d: Drawn, book: BookBuckets, lo: float, hi: float) -> None:
    """Everything drawn across the price axis, identical on every panel (and the inset)."""
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

    assert isinstance(ax, Axes)
    # unknown price ranges are greyed: "no bar" there means "not seen", not "empty"
    if lo < book.known_low:
        ax.axhspan(lo, book.known_low, color="#000000", alpha=0.06, lw=0, zorder=0)
    if hi > book.known_high:
        ax.axhspan(book.known_high, hi, color="#000000", alpha=0.06, lw=0, zorder=0)
    for k in d.known_range:
        ax.axhline(k, color=KNOWN, ls=":", lw=1.2, zorder=4)
    ax.axhspan(*d.value_area, color=VALUE_AREA, alpha=0.10, lw=0, zorder=1)
    for zs, colour in ((d.support, SUPPORT), (d.resistance, RESISTANCE)):
        for z in zs:
            ax.axhspan(z.low, z.high, color=colour, alpha=_alpha(z.confidence), lw=0, zorder=2)
            if z.kind == "wall":  # one or two buckets: a band ~1 px tall, so a line marks it
                ax.axhline(z.price, color=colour, ls=WALL_STYLE, lw=2.2, zorder=5)
    for v in d.vacuums:
        ax.axhspan(v.low, v.high, facecolor=VACUUM, alpha=0.25, hatch="///", edgecolor=VACUUM, lw=0, zorder=2)
    for z in d.resonance:
        ax.add_patch(Rectangle((0, z.low), 1, z.high - z.low, transform=ax.get_yaxis_transform(),
                               fill=False, edgecolor=RESONANCE, lw=2.0, zorder=5))
    ax.axhline(d.poc, color=POC, lw=1.8, zorder=6)
    ax.axhline(d.mid, color=MID, ls="--", lw=1.2, zorder=6)
    ax.grid(axis="x", color="#dddddd", zorder=0)


def _trade_bars(ax: object, profile: TradeProfile) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    ppx, buy, sell = f64(profile.px), f64(profile.buy_qty), f64(profile.sell_qty)
    ps = profile.bucket_size
    # not antialiased: a 1-unit bucket is ~1 px tall, and a blended 1 px bar is a faint smear
    ax.barh(ppx, buy, height=ps, align="edge", color=BUY, lw=0, zorder=3, antialiased=False)
    ax.barh(ppx, sell, left=buy, height=ps, align="edge", color=SELL, lw=0, zorder=3, antialiased=False)


def _inset_range(
    profile: TradeProfile, d: Drawn, lo: float, hi: float
) -> tuple[float, float, float, float] | None:
    """Where to zoom into the trade profile and where to put the zoom (in the trade panel's axes
    fraction): ``(y0, y1, inset_bottom, inset_height)``.

    A short recording trades over a few dozen buckets of a book known over hundreds, so the
    profile is a sliver on the shared axis. The inset shows it (with POC, value area and mid)
    at full resolution, in the larger empty part of the trade panel; none if the profile is
    already tall enough or there is no room.
    """
    ppx = f64(profile.px)
    a = min(float(ppx[0]), d.value_area[0], d.mid)
    b = max(float(ppx[-1]) + profile.bucket_size, d.value_area[1], d.mid)
    pad = max(0.08 * (b - a), 2 * profile.bucket_size)
    a, b = a - pad, b + pad
    span = hi - lo
    if (b - a) / span > 0.25:
        return None
    fa, fb = (a - lo) / span, (b - lo) / span
    if 1 - fb >= fa:  # more room above the traded range: from just above it up to below the title
        bottom = fb + 0.06
        top = min(0.93, bottom + 0.45)
    else:
        top = fa - 0.06
        bottom = max(0.05, top - 0.45)
    if top - bottom < 0.22:
        return None
    return a, b, bottom, top - bottom


def _render_png(
    book: BookBuckets, profile: TradeProfile | None, zones: ZonesDetected, d: Drawn, out: Path, title: str
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fig = Figure(figsize=(16, 10), dpi=100)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(1, 2, width_ratios=(3, 2), wspace=0.03, left=0.065, right=0.83, top=0.885,
                          bottom=0.135)
    ax_book = fig.add_subplot(gs[0])
    ax_tr = fig.add_subplot(gs[1], sharey=ax_book)
    size = book.bucket_size
    lo, hi = d.price_range
    price_fmt = FuncFormatter(lambda v, _: f"{v:,.{d.axis_decimals}f}")

    # bars cover exactly the bucket [px, px + size) (half of it where both sides hold it)
    top = 0.0
    for (y, h, q), colour in zip(book_bars(book), (BID, ASK), strict=True):
        ax_book.barh(y, q, height=h, align="edge", color=colour, lw=0, zorder=3, antialiased=False)
        top = max(top, float(q.max(initial=0.0)))
    # square-root quantity axis: one wall (a round-number order of 60 BTC) must not flatten
    # the hundreds of ordinary buckets next to it into invisibility; the labels stay in real units
    ax_book.set_xscale("function", functions=(np.sqrt, np.square))
    ax_book.xaxis.set_major_locator(FixedLocator(_nice_ticks(top)))
    ax_book.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_book.set_xlim(top * 1.04 if top > 0 else 1.0, 0)  # reversed: bars grow out from the price axis

    has_trades = profile is not None and len(profile.px) > 0
    if profile is not None and has_trades:
        _trade_bars(ax_tr, profile)
    else:
        ax_tr.text(0.5, 0.5, "no trade profile", transform=ax_tr.transAxes, ha="center", color="grey")
    ax_tr.set_xlim(left=0)
    for ax in (ax_book, ax_tr):
        _bands(ax, d, book, lo, hi)

    # a 1-unit zone is ~1 px tall at this scale: a label with a leader line right of the trade
    # panel makes every zone findable; labels are pushed apart so they never overprint
    marks = [(d.poc, f"POC {d.price(d.poc)}", POC), (d.mid, f"mid {d.price(d.mid)}", MID)]
    for name, zs, colour in (("S", d.support, SUPPORT), ("R", d.resistance, RESISTANCE),
                             ("RZ", d.resonance, RESONANCE)):
        for i, z in enumerate(zs, 1):
            kind = " wall" if z.kind == "wall" else ""
            text = f"{name}{i}{kind} {d.price(z.price)}  vol {_qty(z.volume)}  conf {z.confidence:.2f}"
            marks.append((z.price, text, colour))
    ytr = ax_tr.get_yaxis_transform()
    for (price, y_label), label, colour in _spread(marks, lo, hi, min_gap=(hi - lo) / 50):
        ax_tr.annotate(label, xy=(1.0, price), xycoords=ytr, xytext=(1.03, y_label), textcoords=ytr,
                       fontsize=8.5, color=colour, va="center", annotation_clip=False,
                       arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.7, "shrinkA": 0, "shrinkB": 0})
    for nodes, face in ((d.high_volume_nodes, POC), (d.low_volume_nodes, "none")):
        if nodes:
            ax_tr.plot([0.99] * len(nodes), nodes, ls="none", marker="<", ms=7, mfc=face, color=POC,
                       transform=ytr, zorder=7, clip_on=False)

    if profile is not None and has_trades and (place := _inset_range(profile, d, lo, hi)) is not None:
        y0, y1, bottom, height = place
        ins = ax_tr.inset_axes((0.30, bottom, 0.66, height))
        _trade_bars(ins, profile)
        _bands(ins, d, book, y0, y1)
        ins.set_ylim(y0, y1)
        ins.set_xlim(left=0)
        ins.yaxis.set_major_formatter(price_fmt)
        ins.tick_params(labelsize=8)
        ins.set_title("trade profile, zoomed", fontsize=9)
        ax_tr.indicate_inset_zoom(ins, edgecolor="#888888")

    ax_book.set_ylim(lo, hi)
    ax_book.yaxis.set_major_formatter(price_fmt)
    ax_book.set_ylabel("price")
    ax_book.set_xlabel(f"resting quantity per {size:g} bucket (square-root scale)")
    window = f", {profile.window_s / 3600:g} h window" if profile is not None else ""
    ax_tr.set_xlabel(f"traded quantity per {profile.bucket_size if profile else size:g} bucket{window}")
    ax_tr.tick_params(axis="y", labelleft=False)
    ax_book.set_title("order book (bucketed)", fontsize=11)
    ax_tr.set_title("trade profile (buy + sell stacked)", fontsize=11)
    fig.suptitle(title, fontsize=14, fontweight="bold", y=0.985)
    summary = _summary(book, profile, zones, d)
    fig.text(0.065, 0.935, "   |   ".join(summary[:3]), fontsize=9.5, color="#333333")
    fig.text(0.065, 0.915, "   |   ".join(summary[3:]), fontsize=9.5, color="#333333")

    handles = [
        Patch(color=BID, label="bids (resting)"), Patch(color=ASK, label="asks (resting)"),
        Patch(color=BUY, label="trades: buy"), Patch(color=SELL, label="trades: sell"),
        Line2D([], [], color=POC, lw=1.8, label="POC"),
        Patch(color=VALUE_AREA, alpha=0.2, label="value area"),
        Line2D([], [], color=MID, ls="--", label="mid"),
        Patch(color=SUPPORT, alpha=0.4, label="support (opacity = confidence)"),
        Patch(color=RESISTANCE, alpha=0.4, label="resistance (opacity = confidence)"),
        Line2D([], [], color=MID, ls=WALL_STYLE, lw=2.2, label="wall: 1-2 buckets, one big order"),
        Patch(facecolor=VACUUM, alpha=0.25, edgecolor=VACUUM, hatch="///", label="liquidity vacuum"),
        Patch(facecolor="none", edgecolor=RESONANCE, lw=2, label="resonance (book + trades)"),
        Line2D([], [], color=KNOWN, ls=":", label="book known range (grey: unknown)"),
        Line2D([], [], color=POC, marker="<", ls="none", label="high volume node"),
        Line2D([], [], color=POC, mfc="none", marker="<", ls="none", label="low volume node"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.savefig(out, format="png")


def _spread(
    marks: list[tuple[float, str, str]], lo: float, hi: float, min_gap: float
) -> list[tuple[tuple[float, float], str, str]]:
    """Place labels at their prices, nudged apart to ``min_gap`` (in price units), kept in range.

    Returns ``((price, label_y), text, colour)`` so a leader line joins each label to its price.
    """
    marks = sorted(marks, key=lambda m: m[0])
    ys = [min(max(m[0], lo + min_gap / 2), hi - min_gap / 2) for m in marks]
    for i in range(1, len(ys)):  # push up
        ys[i] = max(ys[i], ys[i - 1] + min_gap)
    if ys and ys[-1] > hi - min_gap / 2:  # then pull back down from the top if it overflowed
        ys[-1] = hi - min_gap / 2
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - min_gap)
    return [((m[0], y), m[1], m[2]) for m, y in zip(marks, ys, strict=True)]


# --- HTML --------------------------------------------------------------------------------------


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.3f})"


def _render_html(
    book: BookBuckets, profile: TradeProfile | None, zones: ZonesDetected, d: Drawn, out: Path, title: str
) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.6, 0.4], horizontal_spacing=0.02,
                        subplot_titles=("order book (bucketed)", "trade profile (buy + sell stacked)"))
    size = book.bucket_size
    dec = d.price_decimals
    fmt = d.price  # every price at the symbol's precision

    def bars(px: np.ndarray, qty: np.ndarray, width: float | np.ndarray, name: str, colour: str, col: int,
             base: np.ndarray | None = None, edges: np.ndarray | None = None) -> None:
        # centre each bar on its bucket; hover shows the bucket's edges, not its centre
        if edges is None:
            edges = np.column_stack((px, px + width))
        fig.add_trace(go.Bar(
            x=qty, y=px + np.asarray(width) / 2, base=base, width=width, orientation="h", name=name,
            marker={"color": colour, "line": {"width": 0}}, customdata=edges,
            hovertemplate=f"{name}<br>price %{{customdata[0]:.{dec}f}} .. %{{customdata[1]:.{dec}f}}"
                          f"<br>qty %{{x:,.4f}}<extra></extra>",
        ), row=1, col=col)

    (bid_y, bid_h, bid_q), (ask_y, ask_h, ask_q) = book_bars(book)
    bid_px, ask_px = f64(book.bid_px), f64(book.ask_px)
    bars(bid_y, bid_q, bid_h, "bids", BID, 1, edges=np.column_stack((bid_px, bid_px + size)))
    bars(ask_y, ask_q, ask_h, "asks", ASK, 1, edges=np.column_stack((ask_px, ask_px + size)))
    if profile is not None and len(profile.px):
        ppx, buy, sell = f64(profile.px), f64(profile.buy_qty), f64(profile.sell_qty)
        bars(ppx, buy, profile.bucket_size, "trades: buy", BUY, 2)
        bars(ppx, sell, profile.bucket_size, "trades: sell", SELL, 2, base=buy)

    lo, hi = d.price_range
    rects: list[tuple[float, float, dict[str, object]]] = []
    if lo < book.known_low:
        rects.append((lo, book.known_low, {"fillcolor": "rgba(0,0,0,0.06)"}))
    if hi > book.known_high:
        rects.append((book.known_high, hi, {"fillcolor": "rgba(0,0,0,0.06)"}))
    rects.append((*d.value_area, {"fillcolor": _rgba(VALUE_AREA, 0.10)}))
    wall_edge = {"dash": "dashdot", "width": 2}  # a wall: outlined, dash-dot, in its side's colour
    for zs, colour in ((d.support, SUPPORT), (d.resistance, RESISTANCE)):
        rects += [(z.low, z.high, {"fillcolor": _rgba(colour, _alpha(z.confidence)),
                                   **({"line": {"color": colour, **wall_edge}} if z.kind == "wall" else {})})
                  for z in zs]
    # shapes cannot be hatched in plotly: a grey fill with a dotted outline stands for the hatch
    rects += [(v.low, v.high, {"fillcolor": _rgba(VACUUM, 0.20),
                               "line": {"color": VACUUM, "width": 1, "dash": "dot"}}) for v in d.vacuums]
    rects += [(z.low, z.high, {"fillcolor": "rgba(0,0,0,0)", "line": {"color": RESONANCE, "width": 2}})
              for z in d.resonance]
    lines = [(d.poc, POC, "solid", 2.0), (d.mid, MID, "dash", 1.2),
             (d.known_range[0], KNOWN, "dot", 1.2), (d.known_range[1], KNOWN, "dot", 1.2)]
    # one shape per panel, all set at once: add_hrect/add_hline per shape re-validates the whole
    # layout each time and takes seconds for a few dozen zones
    shapes: list[dict[str, object]] = []
    for xref, yref in (("x domain", "y"), ("x2 domain", "y2")):
        shapes += [{"type": "rect", "xref": xref, "yref": yref, "x0": 0, "x1": 1, "y0": y0, "y1": y1,
                    "layer": "below", "line": {"width": 0}, **style} for y0, y1, style in rects]
        shapes += [{"type": "line", "xref": xref, "yref": yref, "x0": 0, "x1": 1, "y0": y, "y1": y,
                    "line": {"color": colour, "dash": dash, "width": width}}
                   for y, colour, dash, width in lines]

    # markers at every level on the panel's outer edge, so each one has a hover and a legend entry
    xmax = max(float(f64(book.bid_qty).max(initial=0)), float(f64(book.ask_qty).max(initial=0)), 1e-9)
    levels: list[tuple[str, str, str, list[float], list[str]]] = [
        ("POC", POC, "diamond", [d.poc], [f"POC {fmt(d.poc)}"]),
        ("value area", VALUE_AREA, "line-ew-open", list(d.value_area),
         [f"value area low {fmt(d.value_area[0])}", f"value area high {fmt(d.value_area[1])}"]),
        ("mid", MID, "line-ew-open", [d.mid],
         [f"mid {fmt(d.mid)}<br>bid {fmt(zones.best_bid)}  ask {fmt(zones.best_ask)}"]),
        ("known range", KNOWN, "line-ew-open", list(d.known_range),
         [f"book known from {fmt(d.known_range[0])}", f"book known up to {fmt(d.known_range[1])}"]),
    ]
    for name, colour, zs in (("support", SUPPORT, d.support), ("resistance", RESISTANCE, d.resistance),
                             ("resonance", RESONANCE, d.resonance)):
        for kind, symbol in (("wave", "triangle-left"), ("wall", "square")):  # a wall: its own marker
            ranked = [(i, z) for i, z in enumerate(zs, 1) if z.kind == kind]
            if ranked:
                label = name if kind == "wave" else f"{name} wall"
                levels.append((label, colour, symbol, [z.price for _, z in ranked], [
                    f"{label} {i}: peak {fmt(z.price)}<br>band {fmt(z.low)} .. {fmt(z.high)}"
                    f"<br>volume {z.volume:,.4f}  strength {z.strength:.3f}<br>confidence {z.confidence:.2f}"
                    for i, z in ranked]))
    if d.vacuums:
        levels.append(("liquidity vacuum", VACUUM, "square-open", [(v.low + v.high) / 2 for v in d.vacuums],
                       [f"liquidity vacuum {fmt(v.low)} .. {fmt(v.high)}" for v in d.vacuums]))
    if d.high_volume_nodes:
        levels.append(("high volume node", POC, "triangle-left", d.high_volume_nodes,
                       [f"high volume node {fmt(y)}" for y in d.high_volume_nodes]))
    if d.low_volume_nodes:
        levels.append(("low volume node", POC, "triangle-left-open", d.low_volume_nodes,
                       [f"low volume node {fmt(y)}" for y in d.low_volume_nodes]))
    for name, colour, symbol, ys, texts in levels:
        fig.add_trace(go.Scatter(
            x=[xmax * 1.02] * len(ys), y=ys, mode="markers", name=name, text=texts,
            marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 2, "color": colour}},
            hovertemplate="%{text}<extra></extra>",
        ), row=1, col=1)

    fig.update_yaxes(range=[lo, hi], title_text="price", tickformat=f",.{d.axis_decimals}f", row=1, col=1)
    fig.update_xaxes(autorange="reversed", title_text=f"resting quantity per {size:g} bucket", row=1, col=1)
    fig.update_xaxes(title_text="traded quantity per bucket", rangemode="tozero", row=1, col=2)
    fig.update_layout(
        title={"text": title + "<br><sup>" + "  |  ".join(_summary(book, profile, zones, d)) + "</sup>"},
        template="plotly_white", hovermode="closest", height=950, margin={"t": 110}, barmode="overlay",
        bargap=0, legend={"orientation": "v", "x": 1.01, "y": 1.0}, shapes=shapes,
    )
    fig.write_html(out, include_plotlyjs=True, full_html=True, config={"displaylogo": False})


# --- entry points ------------------------------------------------------------------------------


def render(
    book: BookBuckets,
    profile: TradeProfile | None,
    zones: ZonesDetected,
    out_png: Path,
    out_html: Path,
    *,
    source: str = "",
) -> Drawn:
    """Draw ``book``, ``profile`` and ``zones`` to a PNG (1600 x 1000 px) and a self-contained HTML page.

    No bus and no clock: the same messages give the same picture. Returns what was drawn, so
    callers can check or report it without reading pixels.
    """
    vacuums, dropped = clip_vacuums(zones.vacuums, book.known_low, book.known_high)
    drawn = Drawn(
        support=list(zones.support),
        resistance=list(zones.resistance),
        resonance=list(zones.resonance),
        vacuums=vacuums,
        vacuums_dropped=dropped,
        poc=zones.poc,
        value_area=(zones.value_area_low, zones.value_area_high),
        mid=zones.mid,
        known_range=(book.known_low, book.known_high),
        price_range=_price_range(book, profile, zones),
        high_volume_nodes=list(zones.high_volume_nodes),
        low_volume_nodes=list(zones.low_volume_nodes),
        png=Path(out_png),
        html=Path(out_html),
        price_decimals=price_decimals(zones.tick_size or book.tick_size,
                                      zones.bucket_size or book.bucket_size, zones.mid),
        axis_decimals=step_decimals(book.bucket_size),
    )
    title = _title(book, zones, source)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    _render_png(book, profile, zones, drawn, Path(out_png), title)
    _render_html(book, profile, zones, drawn, Path(out_html), title)
    return drawn
