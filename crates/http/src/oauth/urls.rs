//! The URL handling of the login flow: form and query encoding as
//! Python's `urlencode` and `parse_qs` do it, cookies, and the checks on
//! where a browser may be sent back to.

use http::HeaderMap;
use http::header::COOKIE;

/// The longest URL the flow keeps or follows, in characters.
const MAX_URL_CHARS: usize = 2048;

/// `application/x-www-form-urlencoded` of `pairs`, in order: what
/// Python's `urlencode` writes (unreserved characters as they are, spaces
/// as `+`, everything else `%XX`).
pub(crate) fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

fn encode_component(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
}

/// `%XX` escapes of everything but the unreserved characters and `/`: a
/// value fit for a URL fragment, as Python's `quote` writes it.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The pairs of a form body or query string, as Python's `parse_qs`
/// reads them: `+` is a space, `%XX` a byte, invalid UTF-8 replaced, and
/// pairs with an empty value left out.
pub(crate) fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = decode_component(value);
            (!value.is_empty()).then(|| (decode_component(name), value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(at + 1..at + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        at += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `name` among `pairs`.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The value of cookie `name`, if the request has a non-empty one; a
/// value in double quotes (as Python servers write some) loses them.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .to_owned()
        })
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value, attributes in the order the reference's server
/// writes them; `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: u64,
    path: &str,
    secure: bool,
    http_only: bool,
) -> String {
    let mut cookie = format!("{name}={value}");
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    cookie.push_str(&format!("; Max-Age={max_age}; Path={path}; SameSite=Lax"));
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Whether `value` can be a cookie value as it is (RFC 6265 §4.1.1).
pub(crate) fn cookie_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

/// `text` cut to its first [`MAX_URL_CHARS`] characters.
fn truncated(text: &str) -> &str {
    text.char_indices()
        .nth(MAX_URL_CHARS)
        .map_or(text, |(at, _)| &text[..at])
}

/// Where a browser goes back to on this server after logging in: `url`
/// when it is a path under `prefix`, else the prefix itself, so the login
/// can never send a browser to another site.
pub(crate) fn validate_original_url(url: &str, prefix: &str) -> String {
    let url = truncated(url);
    let home = if prefix.is_empty() { "/" } else { prefix };
    if scheme_of(url).is_some() || url.starts_with("//") || !url.starts_with(prefix) {
        return home.to_owned();
    }
    url.to_owned()
}

/// The scheme of `url`, lowercased, if it has one (as Python's
/// `urlsplit` recognises one).
fn scheme_of(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then(|| scheme.to_ascii_lowercase())
}

/// The parts of an absolute http(s) URL the origin checks look at.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    /// Lowercased, IPv6 literals without their brackets.
    host: String,
    port: Option<u16>,
}

fn origin_of(url: &str) -> Option<Origin> {
    let scheme = scheme_of(url).filter(|s| s == "http" || s == "https")?;
    let rest = url[scheme.len() + 1..].strip_prefix("//")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some("") | None => None,
        Some(port) => Some(port.parse().ok()?),
    };
    Some(Origin {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

fn is_localhost(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// `url` if a login may end there, handing its token to an external
/// frontend: plain-http localhost on any port, or an origin in `allowed`
/// (`scheme://host`, or with the port when it has one); the path is free.
/// A URL with whitespace or control characters never qualifies: it would
/// end up in a `Location` header.
pub(crate) fn validate_return_to(url: &str, allowed: &[String]) -> Option<String> {
    if url.is_empty()
        || url.chars().count() > MAX_URL_CHARS
        || !url.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let origin = origin_of(url)?;
    if origin.scheme == "http" && is_localhost(&origin.host) {
        return Some(url.to_owned());
    }
    let host = if origin.host.contains(':') {
        format!("[{}]", origin.host)
    } else {
        origin.host.clone()
    };
    let bare = format!("{}://{host}", origin.scheme);
    let with_port = origin.port.map(|port| format!("{bare}:{port}"));
    allowed
        .iter()
        .any(|a| *a == bare || Some(a) == with_port.as_ref())
        .then(|| url.to_owned())
}

/// The request's `Origin`, if the token endpoint answers scripts of it:
/// plain-http localhost, or one of `allowed` exactly.
pub(crate) fn cors_origin(origin: &str, allowed: &[String]) -> Option<String> {
    let parsed = origin_of(origin)?;
    let local = parsed.scheme == "http" && is_localhost(&parsed.host);
    (local || allowed.iter().any(|a| a == origin)).then(|| origin.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec![
            "https://cupola.query-farm.services".to_owned(),
            "https://app.example:8443".to_owned(),
        ]
    }

    #[test]
    fn forms_round_trip_as_python_writes_and_reads_them() {
        let encoded = form_encode([
            ("redirect_uri", "https://x/cb?a=b"),
            ("scope", "openid email"),
            ("v", "a~b_c.d-e*"),
        ]);
        assert_eq!(
            encoded,
            "redirect_uri=https%3A%2F%2Fx%2Fcb%3Fa%3Db&scope=openid+email&v=a~b_c.d-e%2A"
        );
        let decoded = form_decode(&format!("{encoded}&empty=&bare&bad=%zz%4&u=%C3%A9"));
        assert_eq!(first(&decoded, "redirect_uri"), Some("https://x/cb?a=b"));
        assert_eq!(first(&decoded, "scope"), Some("openid email"));
        assert_eq!(first(&decoded, "empty"), None);
        assert_eq!(first(&decoded, "bare"), None);
        assert_eq!(first(&decoded, "bad"), Some("%zz%4"));
        assert_eq!(first(&decoded, "u"), Some("é"));
        assert_eq!(quote("a b/c&d"), "a%20b/c%26d");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; _vgi_auth=tok.en".parse().unwrap());
        headers.append(COOKIE, "q=\"x==\"; empty=".parse().unwrap());
        assert_eq!(cookie(&headers, "_vgi_auth").as_deref(), Some("tok.en"));
        assert_eq!(cookie(&headers, "q").as_deref(), Some("x=="));
        assert_eq!(cookie(&headers, "empty"), None);
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(cookie_safe("eyJ.a-b_c=="));
        assert!(!cookie_safe("a;b") && !cookie_safe("a b") && !cookie_safe("\"a"));
    }

    #[test]
    fn original_urls_stay_under_the_prefix() {
        assert_eq!(
            validate_original_url("/vgi/describe?x=1", "/vgi"),
            "/vgi/describe?x=1"
        );
        assert_eq!(validate_original_url("https://evil/vgi", "/vgi"), "/vgi");
        assert_eq!(validate_original_url("//evil/vgi", "/vgi"), "/vgi");
        assert_eq!(validate_original_url("javascript:alert(1)", ""), "/");
        assert_eq!(validate_original_url("/other", "/vgi"), "/vgi");
        assert_eq!(validate_original_url("/anything", ""), "/anything");
        let long = format!("/vgi/{}", "a".repeat(3000));
        assert_eq!(validate_original_url(&long, "/vgi").len(), 2048);
    }

    #[test]
    fn return_urls_must_be_local_or_allowed() {
        let ok = |url: &str| validate_return_to(url, &allowed()).is_some();
        assert!(ok("https://cupola.query-farm.services/app#x"));
        assert!(ok("https://CUPOLA.query-farm.services/"));
        assert!(ok("https://app.example:8443/cb"));
        assert!(ok("http://localhost:5173/cb"));
        assert!(ok("http://127.0.0.1/cb"));
        assert!(ok("http://[::1]:3000/cb"));
        assert!(ok("https://user@cupola.query-farm.services/"));
        for bad in [
            "",
            "https://evil.example/",
            "http://cupola.query-farm.services/",
            "https://cupola.query-farm.services.evil.example/",
            "https://cupola.query-farm.services@evil.example/",
            "https://app.example/cb",
            "https://localhost/cb",
            "javascript:alert(1)",
            "//cupola.query-farm.services/",
            "https://cupola.query-farm.services/a b",
            "https://cupola.query-farm.services/\r\nSet-Cookie: x",
            "http://localhost:99999/",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        let long = format!("http://localhost/{}", "a".repeat(2048));
        assert!(!ok(&long));
    }

    #[test]
    fn cors_origins_are_local_or_listed() {
        let allowed = allowed();
        for origin in [
            "https://cupola.query-farm.services",
            "http://localhost:8080",
        ] {
            assert_eq!(cors_origin(origin, &allowed).as_deref(), Some(origin));
        }
        for origin in ["https://evil.example", "null", "https://app.example"] {
            assert_eq!(cors_origin(origin, &allowed), None, "{origin}");
        }
    }
}
