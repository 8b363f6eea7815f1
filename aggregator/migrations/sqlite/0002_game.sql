-- Game schema: players and their sessions, the resource ledger, characters, the link between
-- battles and players, daily quests, and the server's own signing key.

CREATE TABLE players (
    id                   TEXT PRIMARY KEY,
    nickname             TEXT NOT NULL,
    -- Lower-cased nickname: uniqueness ignores case.
    nickname_key         TEXT NOT NULL UNIQUE,
    nickname_changed     INTEGER NOT NULL DEFAULT 0 CHECK (nickname_changed IN (0, 1)),
    login_method         TEXT NOT NULL,
    gold                 INTEGER NOT NULL CHECK (gold >= 0),
    prompt               INTEGER NOT NULL CHECK (prompt >= 0),
    prompt_power         INTEGER NOT NULL CHECK (prompt_power >= 0),
    exp_potion           INTEGER NOT NULL CHECK (exp_potion >= 0),
    energy               INTEGER NOT NULL CHECK (energy >= 0),
    max_energy           INTEGER NOT NULL CHECK (max_energy > 0),
    energy_updated_at_ms INTEGER NOT NULL,
    wins                 INTEGER NOT NULL DEFAULT 0 CHECK (wins >= 0),
    losses               INTEGER NOT NULL DEFAULT 0 CHECK (losses >= 0),
    created_at_ms        INTEGER NOT NULL,
    last_login_at_ms     INTEGER NOT NULL
);
CREATE INDEX players_leaderboard ON players (wins DESC, id);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    player_id        TEXT NOT NULL REFERENCES players (id),
    secret_hash      TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_login_at_ms INTEGER NOT NULL
);
CREATE INDEX devices_player ON devices (player_id);

-- A session is one refresh-token family: every rotation stays in it, revoking it ends them all.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players (id),
    device_id     TEXT REFERENCES devices (id),
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    revoke_reason TEXT
);
CREATE INDEX sessions_player ON sessions (player_id);

CREATE TABLE refresh_tokens (
    token_hash    TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    issued_at_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE ledger (
    id            TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players (id),
    resource      TEXT NOT NULL
                  CHECK (resource IN ('gold', 'prompt', 'prompt_power', 'exp_potion', 'energy')),
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reason        TEXT NOT NULL,
    reference     TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX ledger_player ON ledger (player_id, created_at_ms DESC, id DESC);

-- Responses of spending requests sent with an Idempotency-Key header.
CREATE TABLE idempotency_keys (
    player_id     TEXT NOT NULL REFERENCES players (id),
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (player_id, idem_key)
);

CREATE TABLE characters (
    id                TEXT PRIMARY KEY,
    player_id         TEXT NOT NULL REFERENCES players (id),
    name              TEXT NOT NULL,
    wish              TEXT NOT NULL,
    description       TEXT NOT NULL,
    skill_description TEXT NOT NULL,
    text_source       TEXT NOT NULL CHECK (text_source IN ('templates', 'llm')),
    rarity            INTEGER NOT NULL CHECK (rarity BETWEEN 1 AND 5),
    level             INTEGER NOT NULL DEFAULT 1 CHECK (level >= 1),
    strength          INTEGER NOT NULL CHECK (strength >= 0),
    agility           INTEGER NOT NULL CHECK (agility >= 0),
    luck              INTEGER NOT NULL CHECK (luck >= 0),
    rating            INTEGER NOT NULL DEFAULT 1000,
    wins              INTEGER NOT NULL DEFAULT 0 CHECK (wins >= 0),
    losses            INTEGER NOT NULL DEFAULT 0 CHECK (losses >= 0),
    -- wins / (wins + losses) in basis points, kept current so the leaderboard is an index walk.
    win_rate_bp       INTEGER NOT NULL DEFAULT 0 CHECK (win_rate_bp BETWEEN 0 AND 10000),
    created_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL
);
CREATE INDEX characters_player ON characters (player_id, created_at_ms DESC, id DESC);
CREATE INDEX characters_rating ON characters (rating);
CREATE INDEX characters_leaderboard ON characters (wins DESC, win_rate_bp DESC, id);

-- Which players take part in a battle: one row per side. Admin battles have none.
CREATE TABLE game_battles (
    battle_id             TEXT NOT NULL REFERENCES battles (id),
    player_id             TEXT NOT NULL REFERENCES players (id),
    character_id          TEXT NOT NULL,
    opponent_character_id TEXT NOT NULL,
    side                  TEXT NOT NULL CHECK (side IN ('attacker', 'defender')),
    energy_spent          INTEGER NOT NULL DEFAULT 0 CHECK (energy_spent >= 0),
    outcome               TEXT CHECK (outcome IN ('win', 'loss', 'error')),
    created_at_ms         INTEGER NOT NULL,
    PRIMARY KEY (battle_id, player_id)
);
CREATE INDEX game_battles_player ON game_battles (player_id, created_at_ms DESC, battle_id DESC);
CREATE INDEX game_battles_character ON game_battles (character_id, created_at_ms DESC, battle_id DESC);

CREATE TABLE quests (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('win', 'fight', 'summon', 'upgrade')),
    title           TEXT NOT NULL,
    target          INTEGER NOT NULL CHECK (target > 0),
    reward_resource TEXT NOT NULL
                    CHECK (reward_resource IN ('gold', 'prompt', 'prompt_power', 'exp_potion', 'energy')),
    reward_amount   INTEGER NOT NULL CHECK (reward_amount > 0),
    sort_order      INTEGER NOT NULL
);
INSERT INTO quests (id, kind, title, target, reward_resource, reward_amount, sort_order) VALUES
    ('daily_fight_3', 'fight', 'Fight 3 battles', 3, 'gold', 50, 1),
    ('daily_win_1', 'win', 'Win a battle', 1, 'prompt', 1, 2),
    ('daily_win_3', 'win', 'Win 3 battles', 3, 'prompt_power', 2, 3),
    ('daily_summon_1', 'summon', 'Summon a character', 1, 'exp_potion', 30, 4),
    ('daily_upgrade_1', 'upgrade', 'Upgrade a character', 1, 'gold', 100, 5);

-- Progress of one player on one quest on one UTC day (days since the Unix epoch).
CREATE TABLE player_quests (
    player_id     TEXT NOT NULL REFERENCES players (id),
    quest_id      TEXT NOT NULL REFERENCES quests (id),
    day           INTEGER NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0 CHECK (progress >= 0),
    claimed_at_ms INTEGER,
    PRIMARY KEY (player_id, quest_id, day)
);

-- Secrets the server generates for itself (the JWT signing key when --jwt-secret is not set).
CREATE TABLE server_secrets (
    name          TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
