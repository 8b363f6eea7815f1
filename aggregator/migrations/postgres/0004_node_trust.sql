-- Node trust: operator accounts with their own enrollment tokens and limits; nodes bound to
-- their Ed25519 key, on probation until they have agreed with enough verdicts; shadow votes.
CREATE TABLE operators (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    token_hash    TEXT NOT NULL UNIQUE,
    max_nodes     BIGINT NOT NULL CHECK (max_nodes > 0),
    max_weight    BIGINT NOT NULL CHECK (max_weight >= 0),
    -- 1 for the operators `--local-nodes` creates: their nodes may use loopback URLs.
    is_local      BIGINT NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),
    revoked_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);

-- Nodes registered before this chose their own operator and weight: they leave, and their URL
-- and key are freed, so that they register again under these rules (as new nodes). Their rows
-- and votes stay.
UPDATE nodes SET left_at_ms = COALESCE(left_at_ms, updated_at_ms),
    url = url || '#before-node-trust-' || id, public_key = NULL, token_hash = 'none';

ALTER TABLE nodes ADD COLUMN probation BIGINT NOT NULL DEFAULT 0 CHECK (probation IN (0, 1));
ALTER TABLE nodes ADD COLUMN maintenance BIGINT NOT NULL DEFAULT 0 CHECK (maintenance IN (0, 1));
-- Weight set by an admin; wins over what the node asks for.
ALTER TABLE nodes ADD COLUMN admin_weight BIGINT;
-- Timestamp of the last signed registration: a replayed one is never newer.
ALTER TABLE nodes ADD COLUMN signed_at_ms BIGINT;
CREATE UNIQUE INDEX nodes_public_key ON nodes (public_key);
CREATE INDEX nodes_operator ON nodes (operator);

-- Shadow votes (nodes on probation) join the allowed roles.
ALTER TABLE battle_votes DROP CONSTRAINT battle_votes_role_check;
ALTER TABLE battle_votes ADD CONSTRAINT battle_votes_role_check
    CHECK (role IN ('selected', 'replacement', 'shadow'));
