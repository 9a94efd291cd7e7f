"""Binance spot: decoding of REST and websocket payloads for the live session and its replay."""
