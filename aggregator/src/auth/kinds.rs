//! The kinds of bearer tokens, told apart by their shape so each is refused, with a clear
//! reason, on the others' routes: player access tokens are JWTs (three dot-separated parts),
//! admin, node and enrollment tokens are opaque secrets with their own prefixes. The shape
//! only picks the message: every token is still verified against its own store.

/// Prefix of personal admin tokens.
pub const ADMIN_PREFIX: &str = "hero_admin_";
/// Prefix of node tokens (issued at registration).
pub const NODE_PREFIX: &str = "hero_node_";
/// Prefix of operator enrollment tokens.
pub const ENROLLMENT_PREFIX: &str = "hero_enroll_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Player,
    Admin,
    Node,
    Enrollment,
    /// No known shape (e.g. the bootstrap `--admin-token`, or tokens issued before prefixes).
    Unknown,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Player => "player access",
            TokenKind::Admin => "admin",
            TokenKind::Node => "node",
            TokenKind::Enrollment => "operator enrollment",
            TokenKind::Unknown => "unknown",
        }
    }
}

impl TokenKind {
    /// "an admin token", "a node token", ...
    pub fn described(self) -> &'static str {
        match self {
            TokenKind::Player => "a player access token",
            TokenKind::Admin => "an admin token",
            TokenKind::Node => "a node token",
            TokenKind::Enrollment => "an operator enrollment token",
            TokenKind::Unknown => "not a token this server issues",
        }
    }
}

/// The kind a token's shape says it is.
pub fn of(token: &str) -> TokenKind {
    if token.starts_with(ADMIN_PREFIX) {
        TokenKind::Admin
    } else if token.starts_with(NODE_PREFIX) {
        TokenKind::Node
    } else if token.starts_with(ENROLLMENT_PREFIX) {
        TokenKind::Enrollment
    } else if token.split('.').count() == 3 {
        TokenKind::Player
    } else {
        TokenKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_name_their_kind() {
        assert_eq!(of("eyJh.eyJz.sig"), TokenKind::Player);
        assert_eq!(of("hero_admin_00ff"), TokenKind::Admin);
        assert_eq!(of("hero_node_00ff"), TokenKind::Node);
        assert_eq!(of("hero_enroll_00ff"), TokenKind::Enrollment);
        assert_eq!(of("plain-bootstrap-token"), TokenKind::Unknown);
    }
}
