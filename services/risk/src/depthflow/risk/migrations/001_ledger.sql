-- The risk ledger: the system of record for every decision, order, fill and equity reading.
-- Money is numeric, never float; unique keys make every write idempotent.

CREATE TABLE risk.account (
    venue             text PRIMARY KEY,
    cash              numeric(38, 18) NOT NULL,
    high_water_mark   numeric(38, 18) NOT NULL,
    day               date NOT NULL,
    day_start_equity  numeric(38, 18) NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE risk.positions (
    venue       text NOT NULL,
    symbol      text NOT NULL,
    qty         numeric(38, 18) NOT NULL,
    avg_price   numeric(38, 18) NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol)
);

CREATE TABLE risk.decisions (
    signal_id   text PRIMARY KEY,
    venue       text NOT NULL,
    symbol      text NOT NULL,
    approved    boolean NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    side        text NOT NULL,
    score       double precision NOT NULL,
    confidence  double precision NOT NULL,
    ts_signal   bigint NOT NULL,
    origin_ts   bigint NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_symbol_time ON risk.decisions (venue, symbol, decided_at);

CREATE TABLE risk.orders (
    client_order_id  text PRIMARY KEY,
    signal_id        text NOT NULL UNIQUE REFERENCES risk.decisions (signal_id),
    venue            text NOT NULL,
    symbol           text NOT NULL,
    side             text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty              numeric(38, 18) NOT NULL CHECK (qty > 0),
    price            numeric(38, 18) NOT NULL CHECK (price > 0),
    notional         numeric(38, 18) NOT NULL,
    execution        text NOT NULL CHECK (execution IN ('paper', 'live')),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE risk.fills (
    client_order_id  text PRIMARY KEY REFERENCES risk.orders (client_order_id),
    qty              numeric(38, 18) NOT NULL,
    price            numeric(38, 18) NOT NULL,
    fee              numeric(38, 18) NOT NULL,
    position_after   numeric(38, 18) NOT NULL,
    cash_after       numeric(38, 18) NOT NULL,
    equity_after     numeric(38, 18) NOT NULL,
    filled_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE risk.equity (
    venue     text NOT NULL,
    ts        timestamptz NOT NULL DEFAULT clock_timestamp(),
    equity    numeric(38, 18) NOT NULL,
    cash      numeric(38, 18) NOT NULL,
    PRIMARY KEY (venue, ts)
);

CREATE TABLE risk.state_changes (
    id          bigserial PRIMARY KEY,
    venue       text NOT NULL,
    state       text NOT NULL,
    reason      text NOT NULL,
    equity      numeric(38, 18) NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
