"""Recorded third-party Binance data the tests and the bench replay (see binance/SOURCES.md).

The files live in the repository, so a clone needs nothing beside it; a missing file is a test
failure (``FileNotFoundError`` at the first read), never a skip.
"""

from __future__ import annotations

from pathlib import Path

BINANCE = Path(__file__).resolve().parent / "binance"

HFT_0808 = BINANCE / "hftbacktest/spot/btcusdt_20240808.gz"
HFT_0809 = BINANCE / "hftbacktest/spot/btcusdt_20240809.gz"
CRYPTOFEED = BINANCE / "cryptofeed/2021-04-04/BINANCE-ee25be.0"
BINANCE_US = (
    BINANCE / "cryptofeed/2021-08-14-binance-us/BINANCE_US.http.0.0",
    BINANCE / "cryptofeed/2021-08-14-binance-us/BINANCE_US.ws.1.0",
)
BINANCE_FUTURES = (
    BINANCE / "cryptofeed/2021-07-22-binance-futures/BINANCE_FUTURES.http.0.0",
    BINANCE / "cryptofeed/2021-07-22-binance-futures/BINANCE_FUTURES.ws.1.0",
)
