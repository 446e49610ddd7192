//! The pages browsers get: the landing page, the API page listing every
//! method, the HTML not-found page, each switch, and RPC clients answered
//! exactly as before on the same paths.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::net::SocketAddr;

use arrow_array::RecordBatch;
use bytes::Bytes;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use vgirpc::wire::describe::MethodDescription;
use vgirpc::{ArrowStruct, CallContext, MaybeReady, Outcome, RpcError, Server, Service, Stream};
use vgirpc_http::{AuthContext, HttpConfig, HttpServer, Pages, bearer_static};

/// A point on the plane.
#[derive(Debug, ArrowStruct)]
pub struct Point {
    x: f64,
    y: f64,
}

/// The running total a stream announces first.
#[derive(Debug, ArrowStruct)]
pub struct Summary {
    start: i64,
}

/// One method of each shape the page draws differently.
#[vgirpc::service]
pub trait Gallery {
    /// Adds `a` and `b`.
    /// Second line.
    fn add(&self, a: f64, #[default(1.0)] b: f64) -> Result<f64, RpcError>;
    /// Says hello.
    ///
    ///     To `name`, indented.
    fn greet(
        &self,
        #[default("<world>")] name: String,
        #[default(None)] tag: Option<i64>,
    ) -> Result<String, RpcError>;
    fn plot(&self, point: Point, label: Option<String>) -> Result<String, RpcError>;
    /// <script>alert('pwned')</script> & more
    fn reset(&self) -> Result<(), RpcError>;
    fn countdown(&self, from: i64) -> Result<Stream, RpcError>;
    fn total(&self, start: i64) -> Result<Stream<Summary>, RpcError>;
    fn tally(&self, names: Vec<String>) -> Result<Stream, RpcError>;
}

struct Exhibit;

impl Gallery for Exhibit {
    fn add(&self, a: f64, b: f64) -> Result<f64, RpcError> {
        Ok(a + b)
    }

    fn greet(&self, name: String, tag: Option<i64>) -> Result<String, RpcError> {
        Ok(format!("hello {name} {tag:?}"))
    }

    fn plot(&self, point: Point, label: Option<String>) -> Result<String, RpcError> {
        Ok(format!("{label:?} at ({}, {})", point.x, point.y))
    }

    fn reset(&self) -> Result<(), RpcError> {
        Ok(())
    }

    fn countdown(&self, _from: i64) -> Result<Stream, RpcError> {
        Err(RpcError::runtime_error("only described here"))
    }

    fn total(&self, _start: i64) -> Result<Stream<Summary>, RpcError> {
        Err(RpcError::runtime_error("only described here"))
    }

    fn tally(&self, _names: Vec<String>) -> Result<Stream, RpcError> {
        Err(RpcError::runtime_error("only described here"))
    }
}

/// The gallery with the stream kinds filled in, as a service whose
/// description knows producers from exchanges publishes them.
struct Kinds {
    inner: GalleryServer<Exhibit>,
    methods: Vec<MethodDescription>,
}

impl Kinds {
    fn new() -> Self {
        let inner = GalleryServer::new(Exhibit);
        let methods = inner
            .methods()
            .iter()
            .cloned()
            .map(|mut m| {
                m.is_exchange = match m.name.as_str() {
                    "countdown" => Some(false),
                    "tally" => Some(true),
                    _ => None,
                };
                m
            })
            .collect();
        Self { inner, methods }
    }
}

impl Service for Kinds {
    fn protocol_name(&self) -> &str {
        self.inner.protocol_name()
    }

    fn methods(&self) -> &[MethodDescription] {
        &self.methods
    }

    fn call<'a>(
        &'a self,
        index: usize,
        params: &'a RecordBatch,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<Outcome, RpcError>> {
        self.inner.call(index, params, ctx)
    }
}

fn with_repo() -> Pages {
    Pages::all().repo_url("https://example.com/gallery?a=1&b=2")
}

async fn start(config: HttpConfig) -> SocketAddr {
    start_service(Kinds::new(), config).await
}

async fn start_service(service: impl Service, config: HttpConfig) -> SocketAddr {
    let http = HttpServer::new(Server::new(service).unwrap(), config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending()));
    addr
}

async fn fetch(addr: SocketAddr, method: Method, path: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, request).await
}

fn text(reply: &Reply) -> &str {
    std::str::from_utf8(reply.body()).unwrap()
}

fn assert_html(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status(), status, "{}", text(reply));
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        reply
            .header("content-security-policy")
            .is_some_and(|p| p.starts_with("default-src 'none'")),
        "{:?}",
        reply.headers()
    );
    assert!(text(reply).starts_with("<!DOCTYPE html>"));
    // Nothing is fetched from elsewhere: no scripts, fonts or images.
    for needle in ["<script", "<link", "<img", "@import", "{{"] {
        assert!(!text(reply).contains(needle), "{needle} in {}", text(reply));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn landing_page_names_the_service_and_links_the_api() {
    let addr = start(
        HttpConfig::new()
            .with_prefix("/vgi")
            .with_pages(with_repo()),
    )
    .await;
    for path in ["/vgi", "/vgi/"] {
        let reply = fetch(addr, Method::GET, path).await;
        assert_html(&reply, StatusCode::OK);
        let page = text(&reply);
        assert!(page.contains("<h1>Gallery</h1>"), "{page}");
        assert!(page.contains("href=\"/vgi/describe\""), "{page}");
        assert!(
            page.contains("href=\"https://example.com/gallery?a=1&amp;b=2\""),
            "{page}"
        );
        assert!(page.contains(vgirpc::server_id()), "{page}");
        assert!(page.contains("POST /vgi/&lt;method&gt;"), "{page}");
        let cache = reply.header("cache-control").unwrap();
        assert!(
            cache.contains("no-store") && cache.contains("max-age=0"),
            "{cache}"
        );
    }
    // Only GET: a POST to the prefix is what it always was.
    let reply = fetch(addr, Method::POST, "/vgi").await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    assert_eq!(text(&reply), "Not Found");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_page_lists_every_method_with_kinds_types_defaults_and_docs() {
    let addr = start(
        HttpConfig::new()
            .with_prefix("/vgi")
            .with_pages(with_repo()),
    )
    .await;
    let reply = fetch(addr, Method::GET, "/vgi/describe").await;
    assert_html(&reply, StatusCode::OK);
    let page = text(&reply);

    let service = Kinds::new();
    for method in service.methods() {
        let anchor = format!("id=\"method-{}\"", method.name);
        assert!(page.contains(&anchor), "{} missing", method.name);
        assert!(page.contains(&format!("<h2><code>{}</code></h2>", method.name)));
    }
    assert!(!page.contains("__describe__"));
    let server = Server::new(Kinds::new()).unwrap();
    assert!(page.contains(&format!(
        "<code id=\"protocol-hash\">{}</code>",
        server.protocol_hash()
    )));

    let card = |name: &str| {
        let start = page.find(&format!("id=\"method-{name}\"")).unwrap();
        let end = page[start..].find("</section>").unwrap();
        &page[start..start + end]
    };
    let add = card("add");
    assert!(add.contains("kind-unary"), "{add}");
    assert!(
        add.contains("<p class=\"doc\">Adds `a` and `b`.\nSecond line.</p>"),
        "{add}"
    );
    assert!(
        add.contains(
            "<td><code>b</code></td><td><code>double</code></td><td><code>1.0</code></td>"
        ),
        "{add}"
    );
    assert!(
        add.contains(
            "<td><code>a</code></td><td><code>double</code></td><td class=\"none\">required</td>"
        ),
        "{add}"
    );
    assert!(
        add.contains("<td><code>result</code></td><td><code>double</code></td>"),
        "{add}"
    );

    let plot = card("plot");
    assert!(
        plot.contains("struct&lt;x: double not null, y: double not null&gt;"),
        "{plot}"
    );
    assert!(
        plot.contains("<td><code>label</code></td><td><code>string</code></td>"),
        "{plot}"
    );
    assert!(!plot.contains("Default"), "{plot}");

    let reset = card("reset");
    assert!(
        reset.contains("No parameters") && reset.contains("No result"),
        "{reset}"
    );
    assert!(
        reset.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; more"),
        "{reset}"
    );

    assert!(card("countdown").contains("kind-producer"));
    assert!(card("tally").contains("kind-exchange"));
    assert!(
        card("tally").contains("list&lt;item: string&gt;"),
        "{}",
        card("tally")
    );
    let total = card("total");
    assert!(
        total.contains("kind-stream") && total.contains("kind-header"),
        "{total}"
    );
    assert!(total.contains("<h3>Stream header</h3>"), "{total}");
    assert!(
        total.contains("<td><code>start</code></td><td><code>int64</code></td>"),
        "{total}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_and_defaults_come_from_the_service_trait() {
    // The generated server itself, with the pages as they are by default.
    let addr = start_service(GalleryServer::new(Exhibit), HttpConfig::new()).await;
    let reply = fetch(addr, Method::GET, "/describe").await;
    assert_html(&reply, StatusCode::OK);
    let page = text(&reply);
    let start = page.find("id=\"method-greet\"").unwrap();
    let greet = &page[start..start + page[start..].find("</section>").unwrap()];
    assert!(
        greet.contains("<p class=\"doc\">Says hello.\n\n    To `name`, indented.</p>"),
        "{greet}"
    );
    assert!(
        greet.contains(
            "<td><code>name</code></td><td><code>string</code></td>\
             <td><code>&quot;&lt;world&gt;&quot;</code></td>"
        ),
        "{greet}"
    );
    assert!(
        greet.contains(
            "<td><code>tag</code></td><td><code>int64</code></td><td><code>null</code></td>"
        ),
        "{greet}"
    );
    assert!(page.contains("<code>1.0</code>"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_get_an_html_404_but_rpc_clients_do_not() {
    let addr = start(HttpConfig::new().with_prefix("/vgi")).await;
    for path in ["/", "/no/such/path", "/vgi/a/b/c", "/elsewhere"] {
        let reply = fetch(addr, Method::GET, path).await;
        assert_html(&reply, StatusCode::NOT_FOUND);
        assert!(text(&reply).contains("<strong>Gallery</strong>"), "{path}");
        assert!(text(&reply).contains("href=\"/vgi\""), "{path}");
        // The capability headers ride on every answer.
        assert_eq!(reply.header("vgi-supported-encodings"), Some("zstd"));
    }
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let reply = fetch(addr, method, "/no/such/path").await;
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
        assert_eq!(text(&reply), "Not Found");
    }
    // A method path is no page: GET is not allowed there, and an unknown
    // method still answers with an Arrow error.
    let reply = fetch(addr, Method::GET, "/vgi/add").await;
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    let reply = send(
        addr,
        Request::post("/vgi/nope")
            .header("host", "test")
            .header("content-type", vgirpc_http::ARROW_STREAM)
            .body(Full::new(Bytes::from(request("nope", vec![]))))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        reply.error().unwrap().error_type,
        "MethodNotImplementedError"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_switch_turns_its_page_off() {
    let no_landing = start(HttpConfig::new().with_pages(Pages::all().landing(false))).await;
    let reply = fetch(no_landing, Method::GET, "/").await;
    assert_html(&reply, StatusCode::NOT_FOUND);
    assert!(!text(&reply).contains("href=\"/\""), "{}", text(&reply));
    assert_html(
        &fetch(no_landing, Method::GET, "/describe").await,
        StatusCode::OK,
    );

    let no_describe = start(HttpConfig::new().with_pages(Pages::all().describe(false))).await;
    let landing = fetch(no_describe, Method::GET, "/").await;
    assert_html(&landing, StatusCode::OK);
    assert!(!text(&landing).contains("/describe"), "{}", text(&landing));
    // As in the reference, the path is then a method path like any other.
    let reply = fetch(no_describe, Method::GET, "/describe").await;
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);

    let no_not_found = start(HttpConfig::new().with_pages(Pages::all().not_found(false))).await;
    let reply = fetch(no_not_found, Method::GET, "/no/such/path").await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_html(&fetch(no_not_found, Method::GET, "/").await, StatusCode::OK);

    let none = start(HttpConfig::new().with_pages(Pages::none())).await;
    for path in ["/", "/no/such/path"] {
        let reply = fetch(none, Method::GET, path).await;
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
        assert_eq!(text(&reply), "Not Found");
    }
    let reply = fetch(none, Method::GET, "/describe").await;
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_sit_behind_authentication_like_the_reference() {
    let tokens = [(
        "s3cret".to_owned(),
        AuthContext::authenticated("bearer", "alice"),
    )];
    let addr = start(HttpConfig::new().with_authenticate(bearer_static(tokens))).await;
    for path in ["/", "/describe", "/no/such/path"] {
        let reply = fetch(addr, Method::GET, path).await;
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let reply = send(
        addr,
        Request::get("/describe")
            .header("host", "test")
            .header("authorization", "Bearer s3cret")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_html(&reply, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_named_describe_is_still_called_with_post() {
    let addr = start(HttpConfig::new()).await;
    let reply = send(
        addr,
        Request::post("/describe")
            .header("host", "test")
            .header("content-type", vgirpc_http::ARROW_STREAM)
            .body(Full::new(Bytes::from(request("describe", vec![]))))
            .unwrap(),
    )
    .await;
    // The service has no such method: the RPC route answered, not a page.
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        reply.error().unwrap().error_type,
        "MethodNotImplementedError"
    );
}
