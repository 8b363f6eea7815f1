-- Node trust: operator accounts with their own enrollment tokens and limits; nodes bound to
-- their Ed25519 key, on probation until they have agreed with enough verdicts; shadow votes.
CREATE TABLE operators (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    token_hash    TEXT NOT NULL UNIQUE,
    max_nodes     INTEGER NOT NULL CHECK (max_nodes > 0),
    max_weight    INTEGER NOT NULL CHECK (max_weight >= 0),
    -- 1 for the operators `--local-nodes` creates: their nodes may use loopback URLs.
    is_local      INTEGER NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),
    revoked_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL
);

-- Nodes registered before this chose their own operator and weight: they leave, and their URL
-- and key are freed, so that they register again under these rules (as new nodes). Their rows
-- and votes stay.
UPDATE nodes SET left_at_ms = COALESCE(left_at_ms, updated_at_ms),
    url = url || '#before-node-trust-' || id, public_key = NULL, token_hash = 'none';

ALTER TABLE nodes ADD COLUMN probation INTEGER NOT NULL DEFAULT 0 CHECK (probation IN (0, 1));
ALTER TABLE nodes ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0 CHECK (maintenance IN (0, 1));
-- Weight set by an admin; wins over what the node asks for.
ALTER TABLE nodes ADD COLUMN admin_weight INTEGER;
-- Timestamp of the last signed registration: a replayed one is never newer.
ALTER TABLE nodes ADD COLUMN signed_at_ms INTEGER;
CREATE UNIQUE INDEX nodes_public_key ON nodes (public_key);
CREATE INDEX nodes_operator ON nodes (operator);

-- Shadow votes (nodes on probation) join the allowed roles: SQLite rebuilds the table.
CREATE TABLE battle_votes_new (
    id               TEXT PRIMARY KEY,
    battle_id        TEXT NOT NULL REFERENCES battles (id),
    node_id          TEXT NOT NULL REFERENCES nodes (id),
    role             TEXT NOT NULL CHECK (role IN ('selected', 'replacement', 'shadow')),
    voted_winner_id  TEXT,
    result_json      TEXT,
    response_time_ms INTEGER NOT NULL,
    is_valid         INTEGER NOT NULL CHECK (is_valid IN (0, 1)),
    agrees           INTEGER CHECK (agrees IN (0, 1)),
    error            TEXT,
    created_at_ms    INTEGER NOT NULL,
    UNIQUE (battle_id, node_id)
);
INSERT INTO battle_votes_new SELECT id, battle_id, node_id, role, voted_winner_id, result_json,
    response_time_ms, is_valid, agrees, error, created_at_ms FROM battle_votes;
DROP TABLE battle_votes;
ALTER TABLE battle_votes_new RENAME TO battle_votes;
CREATE INDEX battle_votes_node ON battle_votes (node_id);
