//! Streams in an axum app: an async producer that pages a table out of an
//! async source, and an exchange that keeps a running total, served under
//! `/vgi` beside the app's own routes and called with the async typed
//! client. Rows are typed: `#[derive(ArrowStruct)]` structs name the
//! columns, and `emit_rows` / `rows_from_record_batch` convert.
//!
//! ```text
//! cargo run --example streams
//! ```

use std::error::Error;
use std::time::Duration;

use vgirpc::client::AsyncClient;
use vgirpc::client::http::HttpOptions;
use vgirpc::{
    AnnotatedBatch, ArrowStruct, AsyncProducerState, CallContext, ExchangeState, OutputCollector,
    RpcError, Server, Stream,
};
use vgirpc_http::{HttpConfig, HttpServer};

/// A warehouse's stock, page by page, and a till that adds up sales.
#[vgirpc::service]
pub trait Warehouse {
    /// Every item in stock, `page_size` rows per batch.
    async fn stock(&self, page_size: i64) -> Result<Stream, RpcError>;
    /// Answers each batch of sale amounts with the running total after each.
    fn till(&self) -> Result<Stream, RpcError>;
}

struct Shop;

impl Warehouse for Shop {
    async fn stock(&self, page_size: i64) -> Result<Stream, RpcError> {
        if page_size < 1 {
            return Err(RpcError::value_error("page_size must be at least 1"));
        }
        Ok(Stream::async_producer(
            Item::schema(),
            StockPages {
                offset: 0,
                page_size,
            },
        ))
    }

    fn till(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            Sale::schema(),
            Total::schema(),
            Till { total: 0.0 },
        ))
    }
}

/// One row of the stock listing: the stream's schema is `Item::schema()`.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Item {
    pub sku: String,
    pub count: i64,
}

/// One sale in the till's input.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Sale {
    pub amount: f64,
}

/// The till's answer for each sale.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Total {
    pub total: f64,
}

/// The async source: a database, an object store or another service in a
/// real program; here a table behind a short wait.
async fn fetch_page(offset: usize, limit: usize) -> Vec<(&'static str, i64)> {
    const TABLE: [(&str, i64); 7] = [
        ("apple", 40),
        ("banana", 12),
        ("cherry", 300),
        ("damson", 0),
        ("elderberry", 75),
        ("fig", 9),
        ("grape", 120),
    ];
    tokio::time::sleep(Duration::from_millis(5)).await;
    TABLE.iter().skip(offset).take(limit).copied().collect()
}

/// Where the stock listing stands. Over HTTP the state travels to the
/// client between pages, so it is plain data (`ArrowStruct`) registered
/// with `#[vgirpc::stream_state]`; the source is reached again from it.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct StockPages {
    pub offset: i64,
    pub page_size: i64,
}

#[vgirpc::stream_state]
impl AsyncProducerState for StockPages {
    async fn produce(
        &mut self,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let page = fetch_page(self.offset as usize, self.page_size as usize).await;
        if page.is_empty() {
            return out.finish();
        }
        ctx.info(format!("page at row {}", self.offset));
        self.offset += page.len() as i64;
        let items: Vec<Item> = page
            .into_iter()
            .map(|(sku, count)| Item {
                sku: sku.to_owned(),
                count,
            })
            .collect();
        out.emit_rows(&items)
    }
}

/// The till's running total.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct Till {
    pub total: f64,
}

#[vgirpc::stream_state]
impl ExchangeState for Till {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let totals: Vec<Total> = Sale::rows_from_record_batch(&input.batch)?
            .into_iter()
            .map(|sale| {
                self.total += sale.amount;
                Total { total: self.total }
            })
            .collect();
        out.emit_rows(&totals)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The app: its own page at `/`, the service under `/vgi`. axum strips
    // the mount path, so the service is configured without a prefix.
    let http = HttpServer::new(Server::new(WarehouseServer::new(Shop))?, HttpConfig::new())?;
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the shop's own page" }))
        .nest_service("/vgi", http.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    // Clients name the mount path as their prefix.
    let client = AsyncClient::connect_http_with(&url, HttpOptions::new().prefix("/vgi"))?;
    let warehouse = WarehouseAsyncClient::new(client);

    let mut stock = warehouse.stock(3).await?;
    while let Some(page) = stock.next_batch().await? {
        for item in Item::rows_from_record_batch(&page)? {
            println!("stock: {:<10} {:>4}", item.sku, item.count);
        }
    }

    let mut till = warehouse.till().await?;
    for amounts in [vec![2.5, 4.0], vec![10.0], vec![0.25, 0.25, 1.0]] {
        let sales: Vec<Sale> = amounts.into_iter().map(|amount| Sale { amount }).collect();
        let answer = till.exchange(&Sale::rows_to_record_batch(&sales)?).await?;
        let totals: Vec<f64> = Total::rows_from_record_batch(&answer)?
            .iter()
            .map(|t| t.total)
            .collect();
        println!("till: running totals {totals:?}");
    }
    till.close().await?;

    serving.abort();
    Ok(())
}
