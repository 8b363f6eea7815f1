-- Real logins and roles: wallets (Sign-In with Ethereum) and Google accounts linked to players,
-- single-use sign-in nonces, personal admin accounts, and the per-day count of battles between
-- two players that keeps alt accounts from farming a main one.

-- One wallet or Google account belongs to one player; a player has at most one of each kind.
CREATE TABLE player_logins (
    kind             TEXT NOT NULL CHECK (kind IN ('web3', 'google')),
    -- web3: the address, lower-case 0x-hex; google: the token's `sub`.
    subject          TEXT NOT NULL,
    player_id        TEXT NOT NULL REFERENCES players (id),
    -- google: the email, only when Google said it is verified.
    email            TEXT,
    -- web3: the chain id of the last sign-in.
    chain_id         BIGINT,
    created_at_ms    BIGINT NOT NULL,
    last_login_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE UNIQUE INDEX player_logins_one_per_kind ON player_logins (player_id, kind);

-- Issued by GET /api/v1/auth/web3/nonce; consumed once, by a message whose signature verified.
CREATE TABLE siwe_nonces (
    nonce         TEXT PRIMARY KEY,
    issued_at_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX siwe_nonces_expiry ON siwe_nonces (expires_at_ms);

-- Personal admin tokens (`hero-aggregator admin create NAME`), kept as hashes.
CREATE TABLE admins (
    name            TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    created_at_ms   BIGINT NOT NULL,
    revoked_at_ms   BIGINT,
    last_used_at_ms BIGINT
);

-- Battles a player started against another player's characters, per UTC day.
CREATE TABLE battle_pairs (
    attacker_id TEXT NOT NULL,
    defender_id TEXT NOT NULL,
    day         BIGINT NOT NULL,
    battles     BIGINT NOT NULL,
    PRIMARY KEY (attacker_id, defender_id, day)
);
CREATE INDEX battle_pairs_day ON battle_pairs (day);
