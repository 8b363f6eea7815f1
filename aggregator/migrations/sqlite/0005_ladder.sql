-- The competitive loop: ladder seasons and their ranks, scheduled battles with parimutuel bets,
-- the house account that holds stakes, flags for the admin, and the durable scheduler's runs.

-- The house: a ledger account like any player's (it cannot sign in). Stakes are moved to it,
-- payouts and refunds come from it, and the cut and rounding remainders stay with it, so the
-- gold of all players plus the house only changes by rewards and prizes, never by betting.
-- Its id sorts after every UUID, so it is always the last player row a transaction locks;
-- its nickname key holds a character no nickname may contain, so it never collides.
INSERT INTO players (id, nickname, nickname_key, nickname_changed, login_method, gold, prompt,
    prompt_power, exp_potion, energy, max_energy, energy_updated_at_ms, created_at_ms,
    last_login_at_ms)
VALUES ('house', 'The House', '#house', 1, 'system', 0, 0, 0, 0, 0, 1, 0, 0, 0);

CREATE TABLE seasons (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    starts_at_ms    INTEGER NOT NULL,
    ends_at_ms      INTEGER NOT NULL CHECK (ends_at_ms > starts_at_ms),
    status          TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'closed')),
    -- Gold paid out at close by the prize table (docs/game-api.md).
    prize_pool      INTEGER NOT NULL DEFAULT 0 CHECK (prize_pool >= 0),
    created_at_ms   INTEGER NOT NULL,
    activated_at_ms INTEGER,
    closed_at_ms    INTEGER
);
-- At most one active season.
CREATE UNIQUE INDEX seasons_one_active ON seasons (status) WHERE status = 'active';

CREATE TABLE ladder_ranks (
    season_id        TEXT NOT NULL REFERENCES seasons (id),
    player_id        TEXT NOT NULL REFERENCES players (id),
    character_id     TEXT NOT NULL,
    -- Stored by the rank task; 0 until the first recompute.
    current_rank     INTEGER NOT NULL DEFAULT 0 CHECK (current_rank >= 0),
    rank_points      INTEGER NOT NULL DEFAULT 1000,
    wins             INTEGER NOT NULL DEFAULT 0 CHECK (wins >= 0),
    losses           INTEGER NOT NULL DEFAULT 0 CHECK (losses >= 0),
    is_eligible      INTEGER NOT NULL DEFAULT 1 CHECK (is_eligible IN (0, 1)),
    -- The player met last, so pairing never repeats a pair twice in a row.
    last_opponent_id TEXT,
    last_battle_at_ms INTEGER,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (season_id, player_id)
);
CREATE INDEX ladder_ranks_points ON ladder_ranks (season_id, rank_points DESC, player_id);
CREATE INDEX ladder_ranks_rank ON ladder_ranks (season_id, current_rank, player_id);

CREATE TABLE scheduled_battles (
    id                 TEXT PRIMARY KEY,
    season_id          TEXT NOT NULL REFERENCES seasons (id),
    -- The pairing slot that created it.
    slot_ms            INTEGER NOT NULL,
    red_player_id      TEXT NOT NULL REFERENCES players (id),
    red_character_id   TEXT NOT NULL,
    blue_player_id     TEXT NOT NULL REFERENCES players (id),
    blue_character_id  TEXT NOT NULL,
    -- Both fighters as they were when paired (red first): what bettors saw is what fights.
    fighters_json      TEXT NOT NULL,
    starts_at_ms       INTEGER NOT NULL,
    betting_opens_at_ms  INTEGER NOT NULL,
    betting_closes_at_ms INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'scheduled'
                       CHECK (status IN ('scheduled', 'running', 'settled', 'void')),
    -- The consensus battle, once started (kept when old battles are cleaned up).
    battle_id          TEXT UNIQUE,
    winner_side        TEXT CHECK (winner_side IN ('red', 'blue')),
    red_pool           INTEGER NOT NULL DEFAULT 0 CHECK (red_pool >= 0),
    blue_pool          INTEGER NOT NULL DEFAULT 0 CHECK (blue_pool >= 0),
    house_take         INTEGER NOT NULL DEFAULT 0 CHECK (house_take >= 0),
    void_reason        TEXT,
    created_at_ms      INTEGER NOT NULL,
    settled_at_ms      INTEGER,
    CHECK (red_player_id <> blue_player_id),
    UNIQUE (season_id, slot_ms, red_player_id),
    UNIQUE (season_id, slot_ms, blue_player_id)
);
CREATE INDEX scheduled_battles_due ON scheduled_battles (status, starts_at_ms);
CREATE INDEX scheduled_battles_list ON scheduled_battles (starts_at_ms DESC, id DESC);

CREATE TABLE bets (
    id                  TEXT PRIMARY KEY,
    scheduled_battle_id TEXT NOT NULL REFERENCES scheduled_battles (id),
    player_id           TEXT NOT NULL REFERENCES players (id),
    side                TEXT NOT NULL CHECK (side IN ('red', 'blue')),
    amount              INTEGER NOT NULL CHECK (amount > 0),
    status              TEXT NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'won', 'lost', 'refunded')),
    payout              INTEGER NOT NULL DEFAULT 0 CHECK (payout >= 0),
    created_at_ms       INTEGER NOT NULL,
    settled_at_ms       INTEGER
);
CREATE INDEX bets_battle ON bets (scheduled_battle_id, player_id);
CREATE INDEX bets_player ON bets (player_id, created_at_ms DESC, id DESC);

-- Suspicious patterns for the admin; one flag per (kind, subject).
CREATE TABLE flags (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    detail        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX flags_recent ON flags (created_at_ms DESC, id DESC);

-- One row per (task, slot): the key that makes every replica run a slot exactly once.
CREATE TABLE task_runs (
    task           TEXT NOT NULL,
    slot_ms        INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    owner          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    lease_until_ms INTEGER NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    outcome        TEXT,
    PRIMARY KEY (task, slot_ms)
);
CREATE INDEX task_runs_recent ON task_runs (slot_ms DESC, task);

-- Cleanup walks these by age.
CREATE INDEX battles_settled ON battles (settled_at_ms);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at_ms);
