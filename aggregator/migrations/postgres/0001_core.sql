-- Core schema: AI nodes, battles (durable work) and every node's vote.
CREATE TABLE nodes (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    url                   TEXT NOT NULL UNIQUE,
    api_key               TEXT,
    token_hash            TEXT NOT NULL,
    operator              TEXT,
    backend               TEXT,
    version               TEXT,
    weight                BIGINT NOT NULL DEFAULT 1 CHECK (weight >= 0),
    max_concurrent_requests BIGINT NOT NULL DEFAULT 5 CHECK (max_concurrent_requests > 0),
    reputation            DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    total_requests        BIGINT NOT NULL DEFAULT 0,
    successful_requests   BIGINT NOT NULL DEFAULT 0,
    avg_response_time_ms  DOUBLE PRECISION NOT NULL DEFAULT 0,
    valid_votes           BIGINT NOT NULL DEFAULT 0,
    agreed_votes          BIGINT NOT NULL DEFAULT 0,
    last_heartbeat_ms     BIGINT,
    left_at_ms            BIGINT,
    created_at_ms         BIGINT NOT NULL,
    updated_at_ms         BIGINT NOT NULL
);

CREATE TABLE battles (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'ERROR')),
    fighter1_id     TEXT NOT NULL,
    fighter2_id     TEXT NOT NULL,
    fighters_json   TEXT NOT NULL,
    seed            BIGINT NOT NULL,
    prompt          TEXT NOT NULL,
    winner_id       TEXT,
    settled_by      TEXT CHECK (settled_by IN ('quorum', 'fallback')),
    fallback_engine TEXT,
    result_json     TEXT,
    error           TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    created_by      TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    settled_at_ms   BIGINT
);
CREATE INDEX battles_claimable ON battles (status, created_at_ms);
CREATE INDEX battles_fighter1 ON battles (fighter1_id);
CREATE INDEX battles_fighter2 ON battles (fighter2_id);

CREATE TABLE battle_votes (
    id               TEXT PRIMARY KEY,
    battle_id        TEXT NOT NULL REFERENCES battles (id),
    node_id          TEXT NOT NULL REFERENCES nodes (id),
    role             TEXT NOT NULL CHECK (role IN ('selected', 'replacement')),
    voted_winner_id  TEXT,
    result_json      TEXT,
    response_time_ms BIGINT NOT NULL,
    is_valid         BIGINT NOT NULL CHECK (is_valid IN (0, 1)),
    agrees           BIGINT CHECK (agrees IN (0, 1)),
    error            TEXT,
    created_at_ms    BIGINT NOT NULL,
    UNIQUE (battle_id, node_id)
);
CREATE INDEX battle_votes_node ON battle_votes (node_id);
