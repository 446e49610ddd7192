//! The pages a browser sees: a landing page at `GET {prefix}`, the
//! service's methods and types at `GET {prefix}/describe`, and a not-found
//! page for `GET` on any other path the server does not serve.
//!
//! Every page is rendered once, when the server is built, from the
//! description the server already holds for `__describe__`; a request only
//! clones the bytes. The pages carry their stylesheet inline and load
//! nothing else, and their `Content-Security-Policy` allows no script at
//! all, so even a value that escaped escaping could not run.

mod describe;
mod html;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use http::{Method, Response, StatusCode};
use vgirpc::Server;

use crate::body::{self, ResponseBody};
use html::{escape, fill};

const STYLE: &str = include_str!("style.css");
const LANDING: &str = include_str!("landing.html");
const DESCRIBE: &str = include_str!("describe.html");
const NOT_FOUND: &str = include_str!("not_found.html");

/// Inline styles only: no script, no fetch, no frame, no form.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// Which pages a server answers browsers with
/// ([`HttpConfig::with_pages`](crate::HttpConfig::with_pages)).
///
/// All three are on by default, as in the reference. Each answers `GET`
/// only: other methods on those paths get what an RPC client always got
/// (`405`, or a plain-text `404`), and a method named `describe` is still
/// called with `POST {prefix}/describe`. The pages sit behind
/// [authentication](crate::HttpConfig::with_authenticate) like every
/// endpoint but the health check, as in the reference: they list what the
/// service offers.
///
/// Links between the pages are absolute paths under the configured
/// prefix; a server mounted by a router that strips its own path (see
/// [`HttpServer::service`](crate::HttpServer::service)) should turn the
/// landing page off or keep its links in mind.
#[derive(Debug, Clone)]
pub struct Pages {
    landing: bool,
    describe: bool,
    not_found: bool,
    repo_url: Option<String>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::all()
    }
}

impl Pages {
    /// The landing, describe and not-found pages (the default).
    pub fn all() -> Self {
        Self {
            landing: true,
            describe: true,
            not_found: true,
            repo_url: None,
        }
    }

    /// No pages: `GET {prefix}` and `GET {prefix}/describe` are answered
    /// as any other request of their path, unknown paths with a plain-text
    /// `404`.
    pub fn none() -> Self {
        Self::all().landing(false).describe(false).not_found(false)
    }

    /// Whether `GET {prefix}` answers the landing page: the service's name,
    /// server id, protocol hash and a link to the describe page.
    pub fn landing(mut self, on: bool) -> Self {
        self.landing = on;
        self
    }

    /// Whether `GET {prefix}/describe` answers the page of the service's
    /// methods: kind (unary, producer, exchange), documentation, parameters
    /// with their Arrow types and defaults, result, stream headers, and the
    /// protocol hash. Documentation and defaults are the service's own
    /// ([`MethodDescription::doc`](vgirpc::wire::describe::MethodDescription::doc)
    /// and `param_defaults`: for `#[vgirpc::service]`, the trait's doc
    /// comments and `#[default(..)]`s), not `__describe__`'s, which carries
    /// neither.
    pub fn describe(mut self, on: bool) -> Self {
        self.describe = on;
        self
    }

    /// Whether `GET` on a path the server does not serve answers an HTML
    /// `404` page instead of a plain-text one.
    pub fn not_found(mut self, on: bool) -> Self {
        self.not_found = on;
        self
    }

    /// A link to the service's source on the landing and describe pages
    /// (`repo_url` in the reference). Only `http` and `https` URLs are
    /// linked; anything else is left out with a warning.
    pub fn repo_url(mut self, url: impl Into<String>) -> Self {
        self.repo_url = Some(url.into());
        self
    }
}

/// The pages of one server, rendered.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    landing: Option<Bytes>,
    describe: Option<Bytes>,
    not_found: Option<Bytes>,
    /// `{prefix}` and `{prefix}/` (just `/` at the root).
    landing_paths: [String; 2],
    describe_path: String,
}

impl Rendered {
    pub(crate) fn new(server: &Server, prefix: &str, pages: &Pages) -> Self {
        let service = server.service();
        let protocol = escape(service.protocol_name());
        let landing_path = if prefix.is_empty() {
            "/".to_owned()
        } else {
            prefix.to_owned()
        };
        let describe_path = format!("{prefix}/describe");
        let repo = pages.repo_url.as_deref().filter(|url| {
            let linkable = url.starts_with("https://") || url.starts_with("http://");
            if !linkable {
                tracing::warn!(url, "pages: the repository URL is not http(s); not linked");
            }
            linkable
        });
        let mut methods: Vec<_> = service.methods().iter().collect();
        methods.sort_by(|a, b| a.name.cmp(&b.name));
        let method_count = methods.len().to_string();
        let style = STYLE.trim_end();
        let prefix_html = escape(prefix);
        let footer = format!(
            "Served by <code>vgi-rpc</code> for Rust, vgirpc-http {}",
            env!("CARGO_PKG_VERSION")
        );
        let common = [
            ("style", style),
            ("protocol", protocol.as_str()),
            ("prefix", prefix_html.as_str()),
            ("footer", footer.as_str()),
        ];
        let link = |href: &str, text: &str, primary: bool| {
            let class = if primary { "button primary" } else { "button" };
            format!("<a class=\"{class}\" href=\"{}\">{text}</a>", escape(href))
        };
        let render = |template: &str, extra: &[(&str, &str)]| {
            let values: Vec<(&str, &str)> = common.iter().chain(extra).copied().collect();
            Bytes::from(fill(template, &values))
        };

        let server_id = escape(server.server_id());
        let hash = escape(server.protocol_hash());
        let landing = pages.landing.then(|| {
            let mut links = String::new();
            if pages.describe {
                links.push_str(&link(&describe_path, "Browse the API", true));
            }
            if let Some(url) = repo {
                links.push_str(&link(url, "Source repository", false));
            }
            render(
                LANDING,
                &[
                    ("method_count", &method_count),
                    ("server_id", &server_id),
                    ("protocol_hash", &hash),
                    ("links", &links),
                ],
            )
        });
        let describe = pages.describe.then(|| {
            let cards: String = methods.iter().map(|m| describe::card(m)).collect();
            let repo = repo.map_or_else(String::new, |url| {
                format!(" Source: <a href=\"{0}\">{0}</a>.", escape(url))
            });
            render(
                DESCRIBE,
                &[
                    ("method_count", &method_count),
                    ("server_id", &server_id),
                    ("protocol_hash", &hash),
                    ("repo", &repo),
                    ("toc", &describe::index(&methods)),
                    ("methods", &cards),
                ],
            )
        });
        let not_found = pages.not_found.then(|| {
            let mut links = String::new();
            if pages.landing {
                links.push_str(&link(&landing_path, "Service home", true));
            }
            if pages.describe {
                links.push_str(&link(&describe_path, "Browse the API", !pages.landing));
            }
            render(NOT_FOUND, &[("links", &links)])
        });
        Self {
            landing,
            describe,
            not_found,
            landing_paths: [landing_path, format!("{prefix}/")],
            describe_path,
        }
    }

    /// The landing or describe page, if `method` and `path` ask for one
    /// that is on.
    pub(crate) fn page(&self, method: &Method, path: &str) -> Option<Response<ResponseBody>> {
        if method != Method::GET {
            return None;
        }
        let page = if self.landing_paths.iter().any(|p| p == path) {
            self.landing.as_ref()
        } else if path == self.describe_path {
            self.describe.as_ref()
        } else {
            None
        }?;
        let mut response = html_response(StatusCode::OK, page);
        // The pages change whenever the service is redeployed.
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
        );
        Some(response)
    }

    /// The not-found page for a request to a path the server does not
    /// serve, if it is on and the request is a `GET`: RPC clients `POST`,
    /// and keep their plain-text `404`.
    pub(crate) fn not_found(&self, method: &Method) -> Option<Response<ResponseBody>> {
        let page = self.not_found.as_ref().filter(|_| method == Method::GET)?;
        Some(html_response(StatusCode::NOT_FOUND, page))
    }
}

fn html_response(status: StatusCode, page: &Bytes) -> Response<ResponseBody> {
    let mut response = body::response(status, "text/html; charset=utf-8", page.clone());
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use vgirpc::RpcError;

    use super::*;

    #[vgirpc::service]
    trait Tiny {
        /// {{style}}
        fn ping(&self, times: i64) -> Result<i64, RpcError>;
    }

    struct Pong;

    impl Tiny for Pong {
        fn ping(&self, times: i64) -> Result<i64, RpcError> {
            Ok(times)
        }
    }

    #[test]
    fn every_template_marker_has_a_value() {
        let server = Server::new(TinyServer::new(Pong)).unwrap();
        let pages = Pages::all().repo_url("https://example.com/r");
        let rendered = Rendered::new(&server, "/vgi", &pages);
        for page in [&rendered.landing, &rendered.describe, &rendered.not_found] {
            let text = std::str::from_utf8(page.as_ref().unwrap()).unwrap();
            let markers = text.matches("{{").count();
            // The one marker left is the documentation's, shown as text.
            assert_eq!(markers, usize::from(page == &rendered.describe), "{text}");
        }
    }

    #[test]
    fn only_gets_of_the_page_paths_answer() {
        let server = Server::new(TinyServer::new(Pong)).unwrap();
        let rendered = Rendered::new(&server, "/vgi", &Pages::all().describe(false));
        for path in ["/vgi", "/vgi/"] {
            assert!(rendered.page(&Method::GET, path).is_some(), "{path}");
        }
        assert!(rendered.page(&Method::POST, "/vgi").is_none());
        assert!(rendered.page(&Method::GET, "/vgi/describe").is_none());
        assert!(rendered.page(&Method::GET, "/").is_none());
        assert!(rendered.not_found(&Method::POST).is_none());
        let page = rendered.not_found(&Method::GET).unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);

        let root = Rendered::new(&server, "", &Pages::none());
        assert!(root.page(&Method::GET, "/").is_none());
        assert!(root.not_found(&Method::GET).is_none());
    }
}
