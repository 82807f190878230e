-- simple_bank schema (accounts / entries / transfers, as in the "simple bank"
-- tutorial this demo reproduces) and a few accounts with balances.
CREATE TABLE accounts (
  id         bigserial PRIMARY KEY,
  owner      varchar     NOT NULL,
  balance    bigint      NOT NULL,
  currency   varchar     NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entries (
  id         bigserial PRIMARY KEY,
  account_id bigint      NOT NULL REFERENCES accounts (id),
  amount     bigint      NOT NULL,  -- can be negative or positive
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transfers (
  id              bigserial PRIMARY KEY,
  from_account_id bigint      NOT NULL REFERENCES accounts (id),
  to_account_id   bigint      NOT NULL REFERENCES accounts (id),
  amount          bigint      NOT NULL CHECK (amount > 0),
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ON accounts (owner);
CREATE INDEX ON entries (account_id);
CREATE INDEX ON transfers (from_account_id, to_account_id);

INSERT INTO accounts (owner, balance, currency) VALUES
  ('alice', 1000, 'USD'),
  ('bob',    500, 'USD'),
  ('carol',  250, 'USD');

-- one transfer alice -> bob, with its two entries, in a transaction
BEGIN;
INSERT INTO transfers (from_account_id, to_account_id, amount) VALUES (1, 2, 100);
INSERT INTO entries (account_id, amount) VALUES (1, -100), (2, 100);
UPDATE accounts SET balance = balance - 100 WHERE id = 1;
UPDATE accounts SET balance = balance + 100 WHERE id = 2;
COMMIT;
