//! The page a browser sees when a login fails.

use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{self, ResponseBody};

/// Inline styles only, as on the other pages: no script, fetch or frame.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;\
padding:0 1em;color:#2c2c1e;background:#faf8f0}h1{font-size:1.5em;color:#8b0000}\
.detail{font-family:ui-monospace,monospace;font-size:.9em;background:#f0ede0;\
border:1px solid #e0ddd0;border-radius:4px;padding:.75em 1em;white-space:pre-wrap;\
overflow-wrap:anywhere}a{color:#6b4c00}footer{margin-top:3em;font-size:.85em;color:#6b6b5a}";

/// `text` safe inside HTML text and attribute values (what Python's
/// `html.escape` replaces).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// An error page with `status`: `message`, the server's `detail` if any,
/// and a link to `retry_url` to start over.
pub(crate) fn error_page(
    status: StatusCode,
    message: &str,
    detail: Option<&str>,
    retry_url: &str,
) -> Response<ResponseBody> {
    let detail = detail
        .map(|d| format!("<div class=\"detail\">{}</div>\n", escape(d)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Authentication Error &mdash; vgi-rpc</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<h1>Authentication Error</h1>\n<p>{}</p>\n{detail}\
         <p><a href=\"{}\">Try again</a></p>\n<footer>Powered by \
         <a href=\"https://vgi-rpc.query.farm\"><code>vgi-rpc</code></a></footer>\n\
         </body>\n</html>\n",
        escape(message),
        escape(retry_url),
    );
    let mut response = body::response(status, "text/html; charset=utf-8", html);
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }
}
