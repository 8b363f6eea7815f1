-- Each distinct result of a battle is stored once, compressed: the battle and its votes name
-- it by hash (identical votes share one row). `result_json` stays for rows written before.
CREATE TABLE battle_results (
    battle_id TEXT NOT NULL REFERENCES battles (id),
    -- The first 16 bytes of the SHA-256 of the result's JSON.
    hash      BLOB NOT NULL,
    -- The JSON, zstd-compressed (or as is when that is not smaller).
    body      BLOB NOT NULL,
    PRIMARY KEY (battle_id, hash)
);
ALTER TABLE battles ADD COLUMN result_hash BLOB;

-- Votes are keyed by battle and node, clustered (no row id, no random id): a vote row is a
-- few dozen bytes and one index entry besides.
CREATE TABLE battle_votes_new (
    battle_id        TEXT NOT NULL REFERENCES battles (id),
    node_id          TEXT NOT NULL REFERENCES nodes (id),
    role             TEXT NOT NULL CHECK (role IN ('selected', 'replacement', 'shadow')),
    voted_winner_id  TEXT,
    result_json      TEXT,
    result_hash      BLOB,
    response_time_ms INTEGER NOT NULL,
    is_valid         INTEGER NOT NULL CHECK (is_valid IN (0, 1)),
    agrees           INTEGER CHECK (agrees IN (0, 1)),
    error            TEXT,
    created_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (battle_id, node_id)
) WITHOUT ROWID;
INSERT INTO battle_votes_new (battle_id, node_id, role, voted_winner_id, result_json,
    response_time_ms, is_valid, agrees, error, created_at_ms)
    SELECT battle_id, node_id, role, voted_winner_id, result_json, response_time_ms, is_valid,
        agrees, error, created_at_ms FROM battle_votes;
DROP TABLE battle_votes;
ALTER TABLE battle_votes_new RENAME TO battle_votes;
CREATE INDEX battle_votes_node ON battle_votes (node_id);

-- Nothing looks battles up by fighter (players' histories have their own index).
DROP INDEX battles_fighter1;
DROP INDEX battles_fighter2;
