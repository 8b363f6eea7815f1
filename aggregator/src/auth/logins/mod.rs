//! Wallets and Google accounts linked to players: one account belongs to one player, a player
//! has at most one of each kind, and the last way to sign in cannot be removed. Devices (the
//! guest's device secret) count as a way to sign in too.

pub(crate) mod routes;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::Tx;
use crate::http::ApiError;
use crate::ledger::Ledger;

/// The kinds of outside accounts a player can sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginKind {
    /// An Ethereum wallet (Sign-In with Ethereum).
    Web3,
    /// A Google account (ID token).
    Google,
}

impl LoginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginKind::Web3 => "web3",
            LoginKind::Google => "google",
        }
    }

    fn parse(s: &str) -> Option<LoginKind> {
        match s {
            "web3" => Some(LoginKind::Web3),
            "google" => Some(LoginKind::Google),
            _ => None,
        }
    }
}

/// An account proven by a verified signature or token.
#[derive(Debug, Clone)]
pub struct Account {
    pub kind: LoginKind,
    /// web3: the lower-case address; google: `sub`.
    pub subject: String,
    pub email: Option<String>,
    pub chain_id: Option<i64>,
}

/// A linked account as its player sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkedLogin {
    pub kind: LoginKind,
    /// web3: the address (EIP-55); google: the account id.
    pub subject: String,
    pub email: Option<String>,
    pub chain_id: Option<i64>,
    pub created_at_ms: i64,
    pub last_login_at_ms: i64,
}

/// Every way a player can sign in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Logins {
    pub linked: Vec<LinkedLogin>,
    /// Devices (guest credentials) that can sign in.
    pub devices: i64,
}

/// How an address is shown: EIP-55 mixed case.
pub fn display_address(lower: &str) -> String {
    let bytes = lower
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 20]>::try_from(b).ok());
    bytes.map_or_else(
        || lower.to_owned(),
        |b| crate::auth::siwe::signature::checksummed(&b),
    )
}

/// The player an account belongs to.
pub async fn owner(tx: &mut Tx, account: &Account) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT player_id FROM player_logins WHERE kind = $1 AND subject = $2")
        .bind(account.kind.as_str())
        .bind(&account.subject)
        .fetch_optional(&mut **tx)
        .await
}

async fn insert(
    tx: &mut Tx,
    player: &str,
    account: &Account,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO player_logins (kind, subject, player_id, email, chain_id, created_at_ms, \
             last_login_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(account.kind.as_str())
    .bind(&account.subject)
    .bind(player)
    .bind(&account.email)
    .bind(account.chain_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn touch(tx: &mut Tx, account: &Account, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE player_logins SET last_login_at_ms = $3, email = COALESCE($4, email), \
             chain_id = COALESCE($5, chain_id) WHERE kind = $1 AND subject = $2",
    )
    .bind(account.kind.as_str())
    .bind(&account.subject)
    .bind(now_ms)
    .bind(&account.email)
    .bind(account.chain_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks the player's row for the rest of the transaction (links and unlinks of one player
/// run one at a time, so two unlinks cannot both see "one left").
async fn lock_player(tx: &mut Tx, player: &str) -> Result<bool, sqlx::Error> {
    let locked =
        sqlx::query("UPDATE players SET last_login_at_ms = last_login_at_ms WHERE id = $1")
            .bind(player)
            .execute(&mut **tx)
            .await?;
    Ok(locked.rows_affected() == 1)
}

/// Signs in with `account` as `player`, its owner (see [`owner`]).
pub async fn sign_in_existing(
    tx: &mut Tx,
    account: &Account,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    touch(tx, account, now_ms).await
}

/// Creates a player for `account`, which nobody owns (`login_method` = the account's kind).
pub async fn sign_up(
    tx: &mut Tx,
    ledger: &Ledger,
    account: &Account,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let player = crate::auth::store::create(tx, ledger, account.kind.as_str(), now_ms).await?;
    insert(tx, &player, account, now_ms).await?;
    Ok(player)
}

/// Links `account` to `player`. A guest becomes a player of the account's kind.
pub async fn link(
    tx: &mut Tx,
    player: &str,
    account: &Account,
    now_ms: i64,
) -> Result<(), ApiError> {
    if !lock_player(tx, player).await? {
        return Err(ApiError::NotFound("no such player".into()));
    }
    match owner(tx, account).await? {
        Some(owner) if owner == player => return Ok(touch(tx, account, now_ms).await?),
        Some(_) => {
            return Err(ApiError::Conflict(format!(
                "this {} account belongs to another player",
                account.kind.as_str()
            )));
        }
        None => {}
    }
    let has_kind: Option<String> =
        sqlx::query_scalar("SELECT subject FROM player_logins WHERE player_id = $1 AND kind = $2")
            .bind(player)
            .bind(account.kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    if has_kind.is_some() {
        return Err(ApiError::Conflict(format!(
            "you already have a {} account linked; unlink it first",
            account.kind.as_str()
        )));
    }
    insert(tx, player, account, now_ms).await?;
    sqlx::query("UPDATE players SET login_method = $2 WHERE id = $1 AND login_method = 'guest'")
        .bind(player)
        .bind(account.kind.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the `kind` account of `player`, unless it is the player's last way to sign in.
pub async fn unlink(tx: &mut Tx, player: &str, kind: LoginKind) -> Result<(), ApiError> {
    if !lock_player(tx, player).await? {
        return Err(ApiError::NotFound("no such player".into()));
    }
    let logins = list(tx, player).await?;
    if !logins.linked.iter().any(|l| l.kind == kind) {
        return Err(ApiError::NotFound(format!(
            "you have no {} account linked",
            kind.as_str()
        )));
    }
    if logins.linked.len() as i64 + logins.devices <= 1 {
        return Err(ApiError::Conflict(
            "this is your last way to sign in; link another account before removing it".into(),
        ));
    }
    sqlx::query("DELETE FROM player_logins WHERE player_id = $1 AND kind = $2")
        .bind(player)
        .bind(kind.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every way `player` can sign in.
pub async fn list(conn: &mut sqlx::AnyConnection, player: &str) -> Result<Logins, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, subject, email, chain_id, created_at_ms, last_login_at_ms \
         FROM player_logins WHERE player_id = $1 ORDER BY kind",
    )
    .bind(player)
    .fetch_all(&mut *conn)
    .await?;
    let mut linked = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get("kind")?;
        let Some(kind) = LoginKind::parse(&kind) else {
            continue;
        };
        let subject: String = r.try_get("subject")?;
        linked.push(LinkedLogin {
            kind,
            subject: match kind {
                LoginKind::Web3 => display_address(&subject),
                LoginKind::Google => subject,
            },
            email: r.try_get("email")?,
            chain_id: r.try_get("chain_id")?,
            created_at_ms: r.try_get("created_at_ms")?,
            last_login_at_ms: r.try_get("last_login_at_ms")?,
        });
    }
    let devices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE player_id = $1")
        .bind(player)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Logins { linked, devices })
}
