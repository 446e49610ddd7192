//! Every macro expanded where nothing is in scope that the expansion did not
//! bring itself: no prelude (`#![no_implicit_prelude]`), and the `vgirpc`
//! crate reachable only under another name (`renamed_vgirpc`, through the
//! macros' `crate = ".."` arguments). A path the macros spell relative, or
//! spell `::vgirpc`, fails to compile here.

#![no_implicit_prelude]

use ::renamed_vgirpc::arrow::{array, schema};
use ::renamed_vgirpc::client::Client;
use ::renamed_vgirpc::{
    ArrowEnum, ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream,
    TransportKind,
};

/// A struct parameter and result.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "::renamed_vgirpc::wire")]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// An enum parameter.
#[derive(Debug, Clone, Copy, PartialEq, ArrowEnum)]
#[arrow(crate = "::renamed_vgirpc::wire")]
pub enum Colour {
    Red,
    Blue,
}

/// Each kind of method the macro accepts: sync and async, unary and
/// stream, with a context, a default and an optional parameter.
#[::renamed_vgirpc::service(crate = "::renamed_vgirpc")]
pub trait Geometry {
    /// A struct in, a struct out.
    fn translate(
        &self,
        point: Point,
        #[default(1.0)] dx: f64,
    ) -> ::core::result::Result<Point, RpcError>;
    /// An enum and an optional value in, text out.
    async fn paint(
        &self,
        colour: Colour,
        label: ::core::option::Option<::std::string::String>,
    ) -> ::core::result::Result<::std::string::String, RpcError>;
    /// A producer stream with a context.
    fn count(&self, ctx: &CallContext, limit: i64) -> ::core::result::Result<Stream, RpcError>;
}

struct Shapes;

impl Geometry for Shapes {
    fn translate(&self, point: Point, dx: f64) -> ::core::result::Result<Point, RpcError> {
        ::core::result::Result::Ok(Point {
            x: point.x + dx,
            y: point.y,
        })
    }

    async fn paint(
        &self,
        colour: Colour,
        label: ::core::option::Option<::std::string::String>,
    ) -> ::core::result::Result<::std::string::String, RpcError> {
        let label = label.unwrap_or_else(|| ::std::string::ToString::to_string("?"));
        ::core::result::Result::Ok(::std::format!("{label} in {colour:?}"))
    }

    fn count(&self, _ctx: &CallContext, limit: i64) -> ::core::result::Result<Stream, RpcError> {
        ::core::result::Result::Ok(Stream::producer(
            counter_schema(),
            Counter { next: 0, limit },
        ))
    }
}

fn counter_schema() -> schema::SchemaRef {
    ::std::sync::Arc::new(schema::Schema::new(::std::vec![schema::Field::new(
        "n",
        schema::DataType::Int64,
        false,
    )]))
}

/// A resumable stream state.
#[derive(Debug, Clone, ArrowStruct)]
#[arrow(crate = "::renamed_vgirpc::wire")]
pub struct Counter {
    pub next: i64,
    pub limit: i64,
}

#[::renamed_vgirpc::stream_state(crate = "::renamed_vgirpc")]
impl ProducerState for Counter {
    fn produce(
        &mut self,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> ::core::result::Result<(), RpcError> {
        if self.next >= self.limit {
            return out.finish();
        }
        let column: array::ArrayRef = ::std::sync::Arc::new(array::Int64Array::from_iter_values(
            ::core::iter::once(self.next),
        ));
        self.next += 1;
        out.emit_arrays(::std::vec![column])
    }
}

#[test]
fn expansions_work_without_the_prelude_or_the_crate_name() {
    let (server_reads, client_writes) = ::std::io::pipe().unwrap();
    let (client_reads, server_writes) = ::std::io::pipe().unwrap();
    let server = Server::new(GeometryServer::new(Shapes)).unwrap();
    let serving = ::std::thread::spawn(move || {
        server.serve(server_reads, server_writes, TransportKind::Pipe)
    });
    let mut geometry = GeometryClient::new(Client::from_io(client_reads, client_writes));

    let moved = geometry.translate(Point { x: 1.0, y: 2.0 }, 0.5).unwrap();
    ::std::assert_eq!(moved, Point { x: 1.5, y: 2.0 });
    let painted = geometry
        .paint(
            Colour::Blue,
            ::core::option::Option::Some(::std::string::ToString::to_string("sky")),
        )
        .unwrap();
    ::std::assert_eq!(painted, "sky in Blue");
    let mut rows = 0;
    for batch in geometry.count(3).unwrap() {
        rows += batch.unwrap().num_rows();
    }
    ::std::assert_eq!(rows, 3);

    geometry.into_dynamic().close().unwrap();
    serving.join().unwrap().unwrap();
}
