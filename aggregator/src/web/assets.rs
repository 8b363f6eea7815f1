//! The page's files, embedded in the binary (no build step, nothing fetched from elsewhere),
//! each served with its content type, a strong ETag computed once from its bytes, and 304 for
//! a matching `If-None-Match`.
//!
//! `index.html` names the script and the style sheet with a `?v=` of their ETag, so the
//! browser may keep those for a year (`immutable`) and a new binary's page asks for the new
//! ones; the page itself is revalidated on every load (`no-cache`, answered with 304).

use std::sync::OnceLock;

use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

pub use crate::http::etag::{etag_of, not_modified, respond};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// What the page may load: its own files, images (portraits), and calls to this origin
/// (fetch and the battle event stream). No inline script or style, nothing from elsewhere.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Revalidate every time (a 304 when unchanged).
pub const REVALIDATE: &str = "no-cache";
/// A versioned file: never changes under its URL.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One embedded file.
pub struct Asset {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub etag: String,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str) -> Asset {
        let etag = etag_of(&body);
        Asset {
            body,
            content_type,
            etag,
        }
    }

    /// The `?v=` the page uses for this file: its ETag without the quotes.
    pub fn version(&self) -> &str {
        self.etag.trim_matches('"')
    }
}

pub struct Assets {
    pub index: Asset,
    pub app_js: Asset,
    pub style_css: Asset,
}

/// The embedded files, with their ETags, built once.
pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let app_js = Asset::new(APP_JS.as_bytes().to_vec(), "text/javascript; charset=utf-8");
        let style_css = Asset::new(STYLE_CSS.as_bytes().to_vec(), "text/css; charset=utf-8");
        let index = INDEX_HTML
            .replace("__APP_JS_VERSION__", app_js.version())
            .replace("__STYLE_CSS_VERSION__", style_css.version());
        Assets {
            index: Asset::new(index.into_bytes(), "text/html; charset=utf-8"),
            app_js,
            style_css,
        }
    })
}

fn serve(headers: &HeaderMap, asset: &Asset, cache_control: &'static str) -> Response {
    respond(
        headers,
        asset.body.clone(),
        asset.content_type,
        &asset.etag,
        cache_control,
    )
}

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    let mut response = serve(&headers, &assets().index, REVALIDATE);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Immutable when asked for under the current version, else revalidated.
fn versioned(query: Option<&str>, asset: &Asset) -> &'static str {
    let current = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .any(|pair| pair.strip_prefix("v=") == Some(asset.version()));
    if current { IMMUTABLE } else { REVALIDATE }
}

/// `GET /assets/app.js`.
pub async fn app_js(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let asset = &assets().app_js;
    serve(&headers, asset, versioned(query.as_deref(), asset))
}

/// `GET /assets/style.css`.
pub async fn style_css(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let asset = &assets().style_css;
    serve(&headers, asset, versioned(query.as_deref(), asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_files_by_version() {
        let a = assets();
        let page = String::from_utf8(a.index.body.clone()).unwrap();
        assert!(page.contains(&format!("/assets/app.js?v={}", a.app_js.version())));
        assert!(page.contains(&format!("/assets/style.css?v={}", a.style_css.version())));
        assert!(!page.contains("__"), "a placeholder was left in the page");
        // Nothing from another origin: no CDN, no external fonts.
        for text in [&page, APP_JS, STYLE_CSS] {
            assert!(!text.contains("http://"), "absolute URL in an asset");
            assert!(!text.contains("https://"), "absolute URL in an asset");
            assert!(!text.contains("@import"), "imported style sheet");
        }
    }
}
