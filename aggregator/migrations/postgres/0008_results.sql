-- Each distinct result of a battle is stored once, compressed: the battle and its votes name
-- it by hash (identical votes share one row). `result_json` stays for rows written before.
CREATE TABLE battle_results (
    battle_id TEXT NOT NULL REFERENCES battles (id),
    -- The first 16 bytes of the SHA-256 of the result's JSON.
    hash      BYTEA NOT NULL,
    -- The JSON, zstd-compressed (or as is when that is not smaller).
    body      BYTEA NOT NULL,
    PRIMARY KEY (battle_id, hash)
);
ALTER TABLE battles ADD COLUMN result_hash BYTEA;

-- Votes are keyed by battle and node (no random id).
ALTER TABLE battle_votes ADD COLUMN result_hash BYTEA;
ALTER TABLE battle_votes DROP COLUMN id;
ALTER TABLE battle_votes DROP CONSTRAINT battle_votes_battle_id_node_id_key;
ALTER TABLE battle_votes ADD PRIMARY KEY (battle_id, node_id);

-- Nothing looks battles up by fighter (players' histories have their own index).
DROP INDEX battles_fighter1;
DROP INDEX battles_fighter2;
