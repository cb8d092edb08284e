//! The browser chat client (`web/`), embedded in the binary at build time and
//! served at `GET /`, `GET /app.js`, `GET /app.css` and `GET /sw.js` (the
//! Web Push service worker). No build step: the
//! files are plain HTML, CSS and JavaScript.

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const SW_JS: &str = include_str!("../web/sw.js");

/// The embedded file served at `path` (without the query string), if any.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/app.css" => ("text/css; charset=utf-8", APP_CSS),
        // The Web Push service worker; at the root so its scope is the whole app.
        "/sw.js" => ("text/javascript; charset=utf-8", SW_JS),
        _ => return None,
    };
    Some(Asset { content_type, body: body.as_bytes() })
}
