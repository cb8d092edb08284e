//! The browser chat client (`web/`), embedded in the binary at build time and
//! served at `GET /`, `GET /app.js`, `GET /app.css` and `GET /sw.js` (the
//! Web Push service worker). No build step: the
//! files are plain HTML, CSS and JavaScript. The client SDK's modules
//! (`clients/js/src/`) are served under `/sdk/`, and `app.js` imports them.

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const SW_JS: &str = include_str!("../web/sw.js");

/// The SDK's ES modules, by file name under `/sdk/`.
const SDK: [(&str, &str); 6] = [
    ("index.js", include_str!("../clients/js/src/index.js")),
    ("client.js", include_str!("../clients/js/src/client.js")),
    ("session.js", include_str!("../clients/js/src/session.js")),
    ("delivery.js", include_str!("../clients/js/src/delivery.js")),
    ("util.js", include_str!("../clients/js/src/util.js")),
    ("kinds.js", include_str!("../clients/js/src/kinds.js")),
];

/// The embedded file served at `path` (without the query string), if any.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/app.css" => ("text/css; charset=utf-8", APP_CSS),
        // The Web Push service worker; at the root so its scope is the whole app.
        "/sw.js" => ("text/javascript; charset=utf-8", SW_JS),
        _ => {
            let name = path.strip_prefix("/sdk/")?;
            let (_, body) = SDK.iter().find(|(n, _)| *n == name)?;
            ("text/javascript; charset=utf-8", *body)
        }
    };
    Some(Asset { content_type, body: body.as_bytes() })
}
