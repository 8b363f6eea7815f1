//! A Sign-In with Ethereum message (EIP-4361), parsed strictly by the EIP's grammar: every
//! line in its place, nothing unknown, every field bounded. Pure: no clock, no crypto.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest statement, in bytes.
const MAX_STATEMENT_BYTES: usize = 512;
/// Longest domain, URI, request id or resource, in bytes.
const MAX_FIELD_BYTES: usize = 512;
/// Most resources listed.
const MAX_RESOURCES: usize = 16;
/// Nonce length bounds (the EIP asks for at least 8 alphanumerics).
const NONCE_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

/// A parsed message. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    /// The scheme before the domain, when the message names one (`https://example.com wants…`).
    pub scheme: Option<String>,
    /// `host[:port]`: the authority that asks for the signature.
    pub domain: String,
    /// `0x` and 40 hex digits, EIP-55 checksum verified by [`crate::auth::siwe::signature`].
    pub address: String,
    pub statement: Option<String>,
    pub uri: url::Url,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at_ms: i64,
    pub expiration_ms: Option<i64>,
    pub not_before_ms: Option<i64>,
    pub request_id: Option<String>,
    pub resources: Vec<url::Url>,
}

/// Why a message is not a valid EIP-4361 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid Sign-In with Ethereum message: {0}")]
pub struct MalformedMessage(pub String);

fn bad(reason: impl Into<String>) -> MalformedMessage {
    MalformedMessage(reason.into())
}

/// The lines of a message, consumed in order.
struct Lines<'a> {
    lines: std::iter::Peekable<std::str::Split<'a, char>>,
}

impl<'a> Lines<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, MalformedMessage> {
        self.lines
            .next()
            .ok_or_else(|| bad(format!("the message ends before {what}")))
    }

    /// The value of a `Tag: value` line.
    fn tagged(&mut self, tag: &str) -> Result<&'a str, MalformedMessage> {
        let line = self.next(tag)?;
        line.strip_prefix(tag)
            .and_then(|rest| rest.strip_prefix(": "))
            .ok_or_else(|| bad(format!("expected a line starting with \"{tag}: \"")))
    }

    /// The value of an optional `Tag: value` line, when the next line is one.
    fn optional(&mut self, tag: &str) -> Result<Option<&'a str>, MalformedMessage> {
        let next = self.lines.peek().copied();
        match next {
            Some(line) if line.starts_with(&format!("{tag}:")) => self.tagged(tag).map(Some),
            _ => Ok(None),
        }
    }
}

fn bounded<'a>(value: &'a str, what: &str) -> Result<&'a str, MalformedMessage> {
    if value.is_empty() || value.len() > MAX_FIELD_BYTES {
        return Err(bad(format!(
            "{what} must be 1 to {MAX_FIELD_BYTES} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(format!("{what} contains spaces or control characters")));
    }
    Ok(value)
}

fn timestamp(value: &str, what: &str) -> Result<i64, MalformedMessage> {
    if value.len() > 64 {
        return Err(bad(format!("{what} is too long")));
    }
    let t = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| bad(format!("{what} is not an RFC 3339 date-time")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| bad(format!("{what} is out of range")))
}

fn parse_uri(value: &str, what: &str) -> Result<url::Url, MalformedMessage> {
    url::Url::parse(bounded(value, what)?).map_err(|_| bad(format!("{what} is not a valid URI")))
}

/// The domain: an RFC 3986 authority (no user info or path), after an optional
/// `scheme://` (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
fn domain(value: &str) -> Result<(Option<String>, String), MalformedMessage> {
    let value = bounded(value, "the domain")?;
    let (scheme, authority) = match value.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, value),
    };
    if let Some(scheme) = scheme {
        let mut chars = scheme.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !ok {
            return Err(bad("the scheme before the domain is not a URI scheme"));
        }
    }
    let ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:[]".contains(c));
    if !ok {
        return Err(bad("the domain is not a host[:port] authority"));
    }
    Ok((scheme.map(str::to_owned), authority.to_owned()))
}

/// The statement's characters by the EIP's grammar: RFC 3986 reserved and unreserved, and space.
fn statement_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " -._~:/?#[]@!$&'()*+,;=".contains(c)
}

fn address(value: &str) -> Result<String, MalformedMessage> {
    let hex = value
        .strip_prefix("0x")
        .ok_or_else(|| bad("the address must start with 0x"))?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("the address must be 0x and 40 hex digits"));
    }
    Ok(value.to_owned())
}

impl SiweMessage {
    /// Parses `text` by the EIP-4361 grammar (lines end with `\n`; no trailing newline).
    pub fn parse(text: &str) -> Result<SiweMessage, MalformedMessage> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(bad(format!(
                "the message is over {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        if text.contains('\r') {
            return Err(bad("lines must end with \\n alone"));
        }
        let mut lines = Lines {
            lines: text.split('\n').peekable(),
        };
        let first = lines.next("the first line")?;
        let (scheme, domain) = domain(
            first
                .strip_suffix(PREAMBLE)
                .ok_or_else(|| bad(format!("the first line must end with \"{PREAMBLE}\"")))?,
        )?;
        let address = address(lines.next("the address")?)?;
        if !lines.next("the blank line after the address")?.is_empty() {
            return Err(bad("a blank line must follow the address"));
        }
        let statement = match lines.next("the statement or a blank line")? {
            "" => None,
            statement => {
                if statement.len() > MAX_STATEMENT_BYTES || !statement.chars().all(statement_char) {
                    return Err(bad(format!(
                        "the statement must be one line of at most {MAX_STATEMENT_BYTES} \
                         characters: letters, digits, spaces and URI punctuation"
                    )));
                }
                if !lines.next("the blank line after the statement")?.is_empty() {
                    return Err(bad("a blank line must follow the statement"));
                }
                Some(statement.to_owned())
            }
        };
        let uri = parse_uri(lines.tagged("URI")?, "the URI")?;
        if lines.tagged("Version")? != "1" {
            return Err(bad("the version must be 1"));
        }
        let chain = lines.tagged("Chain ID")?;
        if chain.is_empty() || chain.len() > 19 || !chain.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("the chain id must be a decimal number"));
        }
        let chain_id = chain
            .parse()
            .map_err(|_| bad("the chain id is out of range"))?;
        let nonce = lines.tagged("Nonce")?;
        if !NONCE_BYTES.contains(&nonce.len()) || !nonce.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(bad("the nonce must be 8 to 64 letters and digits"));
        }
        let issued_at_ms = timestamp(lines.tagged("Issued At")?, "Issued At")?;
        let expiration_ms = lines
            .optional("Expiration Time")?
            .map(|v| timestamp(v, "Expiration Time"))
            .transpose()?;
        let not_before_ms = lines
            .optional("Not Before")?
            .map(|v| timestamp(v, "Not Before"))
            .transpose()?;
        let request_id = match lines.lines.peek().copied() {
            Some(line) if line.starts_with("Request ID:") => {
                let value = lines.tagged("Request ID")?;
                if value.len() > MAX_FIELD_BYTES || value.chars().any(char::is_control) {
                    return Err(bad("the request id is too long or has control characters"));
                }
                Some(value.to_owned())
            }
            _ => None,
        };
        let mut resources = Vec::new();
        if lines.lines.peek().is_some() {
            if lines.next("Resources")? != "Resources:" {
                return Err(bad("unexpected line after the known fields"));
            }
            for line in lines.lines.by_ref() {
                let value = line
                    .strip_prefix("- ")
                    .ok_or_else(|| bad("each resource is a line \"- URI\""))?;
                resources.push(parse_uri(value, "a resource")?);
                if resources.len() > MAX_RESOURCES {
                    return Err(bad(format!("at most {MAX_RESOURCES} resources")));
                }
            }
        }
        Ok(SiweMessage {
            scheme,
            domain,
            address,
            statement,
            uri,
            chain_id,
            nonce: nonce.to_owned(),
            issued_at_ms,
            expiration_ms,
            not_before_ms,
            request_id,
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "example.com wants you to sign in with your Ethereum account:\n\
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\
\n\
Sign in to AI Hero Battle.\n\
\n\
URI: https://example.com/login\n\
Version: 1\n\
Chain ID: 5000\n\
Nonce: abcdef0123456789\n\
Issued At: 2026-12-01T10:00:00Z\n\
Expiration Time: 2026-12-01T10:05:00.500Z\n\
Not Before: 2026-12-01T09:59:00+00:00\n\
Request ID: req-1\n\
Resources:\n\
- https://example.com/terms\n\
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq";

    #[test]
    fn parses_every_field() {
        let m = SiweMessage::parse(FULL).unwrap();
        assert_eq!(m.domain, "example.com");
        assert_eq!(m.address, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
        assert_eq!(m.statement.as_deref(), Some("Sign in to AI Hero Battle."));
        assert_eq!(m.uri.as_str(), "https://example.com/login");
        assert_eq!((m.chain_id, m.nonce.as_str()), (5000, "abcdef0123456789"));
        assert_eq!(m.issued_at_ms, 1_796_119_200_000);
        assert_eq!(m.expiration_ms, Some(1_796_119_500_500));
        assert_eq!(m.not_before_ms, Some(1_796_119_140_000));
        assert_eq!(m.request_id.as_deref(), Some("req-1"));
        assert_eq!(m.resources.len(), 2);
    }

    #[test]
    fn the_statement_and_optional_fields_may_be_left_out() {
        let minimal = "localhost:8080 wants you to sign in with your Ethereum account:\n\
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n\n\
URI: http://localhost:8080\nVersion: 1\nChain ID: 1\nNonce: 12345678\n\
Issued At: 2026-12-01T10:00:00Z";
        let m = SiweMessage::parse(minimal).unwrap();
        assert_eq!(m.statement, None);
        assert_eq!(m.domain, "localhost:8080");
        assert_eq!(m.scheme, None);
        let schemed =
            SiweMessage::parse(&minimal.replacen("localhost:8080", "http://localhost:8080", 1))
                .unwrap();
        assert_eq!(
            (schemed.scheme.as_deref(), schemed.domain.as_str()),
            (Some("http"), "localhost:8080")
        );
        assert!(m.expiration_ms.is_none() && m.resources.is_empty());
    }

    #[test]
    fn anything_out_of_grammar_is_refused() {
        let cases = [
            FULL.replace("wants you", "would like you"),
            FULL.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02a"),
            FULL.replace("Version: 1", "Version: 2"),
            FULL.replace("Chain ID: 5000", "Chain ID: -1"),
            FULL.replace("Nonce: abcdef0123456789", "Nonce: short"),
            FULL.replace("Nonce: abcdef0123456789", "Nonce: has-dash-0123"),
            FULL.replace("2026-12-01T10:00:00Z", "yesterday"),
            FULL.replace('\n', "\r\n"),
            FULL.replace("Request ID: req-1\n", "Request ID: req-1\nSurprise: yes\n"),
            FULL.replace("- https://example.com/terms", "https://example.com/terms"),
            FULL.replace("URI: https://example.com/login", "URI: not a uri"),
            FULL.replace("example.com wants", "user@example.com/path wants"),
            FULL.replace("example.com wants", "1http://example.com wants"),
            FULL.replace("Sign in to AI Hero Battle.", "Sign in \u{202e}now"),
            FULL.replace("Sign in to AI Hero Battle.", "Say \"hi\""),
            FULL.replace("Sign in to AI Hero Battle.\n\n", "Sign in\n"),
            format!("{FULL}\n"),
            String::new(),
            format!("{FULL}{}", "x".repeat(MAX_MESSAGE_BYTES)),
        ];
        for case in cases {
            assert!(SiweMessage::parse(&case).is_err(), "accepted: {case:?}");
        }
    }

    #[test]
    fn resources_are_bounded() {
        let many: String = (0..=MAX_RESOURCES)
            .map(|i| format!("\n- https://example.com/{i}"))
            .collect();
        let text = format!(
            "{}{many}",
            FULL.split("\nResources:").next().unwrap().to_owned() + "\nResources:"
        );
        assert!(SiweMessage::parse(&text).is_err());
    }
}
