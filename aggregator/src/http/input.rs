//! Input that no route accepts, refused once at the boundary: control characters in the path
//! or query string (ids, cursors and filters are never text with control characters, and
//! PostgreSQL cannot even store U+0000), and U+0000 anywhere in a JSON body.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Whether `c` is an invisible character that changes how text around it is shown: the
/// bidirectional controls (U+061C, U+200E–F, U+202A–E, U+2066–9), zero-width characters
/// (U+200B–D, U+2060–4, U+FEFF). A name holding one can read as another name, or reverse the
/// text after it in a log or a page.
pub fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether `s` is fit to show as one line: no control character (line breaks included) and
/// no hidden formatting character ([`is_hidden_format`]).
pub fn is_plain_line(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || is_hidden_format(c))
}

/// Whether `s` holds a percent-escaped control character (`%00`–`%1F`, `%7F`).
pub fn has_control_escape(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// Whether a JSON text escapes U+0000 in a string (`\u0000`, an odd run of backslashes
/// before the `u`). A raw NUL is not valid JSON anyway.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, &b) in json.iter().enumerate() {
        if b == b'\\' {
            backslashes += 1;
            continue;
        }
        if b == b'u'
            && backslashes % 2 == 1
            && json
                .get(i + 1..i + 5)
                .is_some_and(|hex| hex.iter().all(|&h| h == b'0'))
        {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// Middleware, before any route: a path with a control character names nothing (404, as an
/// unknown id would), a query string with one is 400.
pub async fn refuse_control_characters(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if has_control_escape(uri.path()) {
        return ApiError::NotFound("no such resource: the path holds a control character".into())
            .into_response();
    }
    if uri.query().is_some_and(has_control_escape) {
        return ApiError::BadRequest("the query string must not contain control characters".into())
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_escapes_are_found() {
        assert!(has_control_escape("/api/v1/characters/%00"));
        assert!(has_control_escape("a%1fb"));
        assert!(has_control_escape("cursor=%7F"));
        assert!(!has_control_escape("/api/v1/characters/abc%20def"));
        assert!(!has_control_escape("100%"));
        assert!(!has_control_escape("%zz%4"));
    }

    #[test]
    fn escaped_nul_in_json_is_found_and_escaped_backslashes_are_not() {
        assert!(json_has_nul(br#"{"device_id":"a\u0000b"}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#));
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\u0041 \n"}"#));
    }

    #[test]
    fn plain_lines_have_no_breaks_nor_hidden_formatting() {
        assert!(is_plain_line("node-7 Ærø 東京"));
        for bad in [
            "\nFAKE LOG LINE",
            "name\r",
            "\u{202E}good-node",
            "a\u{200B}b",
            "\u{FEFF}x",
            "\u{2066}x\u{2069}",
        ] {
            assert!(!is_plain_line(bad), "{bad:?}");
        }
    }
}
