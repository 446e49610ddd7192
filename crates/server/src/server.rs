use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgirpc_wire::WireError;
use vgirpc_wire::describe::{self, DESCRIBE_METHOD, MethodType};
use vgirpc_wire::ipc::{ReadLimits, StreamReader, StreamWriter, empty_schema};
use vgirpc_wire::log::{ErrorInfo, LogRecord, empty_batch};
use vgirpc_wire::metadata::{self, Metadata};
use vgirpc_wire::request::{Request, request_error_info};

use crate::context::{CallContext, TransportKind, new_request_id, server_id};
use crate::error::ServeError;
use crate::service::{Outcome, Service};
use crate::stream::{AnnotatedBatch, ErasedStream, OutputCollector, StreamKind, coerce_input};

/// Whether a connection has more requests after [`Server::serve_one`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// One request was answered; more may follow.
    Request,
    /// The peer closed the connection between requests.
    Closed,
}

/// Serves a [`Service`] over any byte-stream connection.
///
/// The server owns no transport: pipe, Unix-socket and shared-memory
/// transports hand it a reader and a writer per connection. It is cheap to
/// clone and safe to share between connection threads.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    service: Box<dyn Service>,
    describe: (RecordBatch, Metadata),
    limits: ReadLimits,
    started_on: Mutex<Option<TransportKind>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("protocol", &self.inner.service.protocol_name())
            .field("server_id", &server_id())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `service` with default limits.
    pub fn new(service: impl Service) -> Result<Self, ServeError> {
        Self::with_limits(service, ReadLimits::default())
    }

    /// A server whose readers reject messages beyond `limits`.
    pub fn with_limits(service: impl Service, limits: ReadLimits) -> Result<Self, ServeError> {
        let describe =
            describe::describe_batch(service.protocol_name(), service.methods(), server_id())?;
        Ok(Self {
            inner: Arc::new(Inner {
                service: Box::new(service),
                describe,
                limits,
                started_on: Mutex::new(None),
            }),
        })
    }

    /// The served service.
    pub fn service(&self) -> &dyn Service {
        self.inner.service.as_ref()
    }

    /// Identity of this server process.
    pub fn server_id(&self) -> &'static str {
        server_id()
    }

    /// Fires the service's `on_serve_start` hook once per transport kind.
    pub fn notify_serve_start(&self, kind: TransportKind) -> Result<(), ServeError> {
        let mut started = self
            .inner
            .started_on
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *started == Some(kind) {
            return Ok(());
        }
        self.inner
            .service
            .on_serve_start(kind)
            .map_err(|e| ServeError::StartHook(e.to_string()))?;
        *started = Some(kind);
        Ok(())
    }

    /// Answers requests on one connection until the peer closes it.
    ///
    /// Returns `Ok(())` on a clean close. A peer that sends bytes which are
    /// not Arrow IPC gets an error response first, then the connection ends,
    /// because the byte stream cannot be resynchronised.
    pub fn serve<R: Read, W: Write>(
        &self,
        mut reader: R,
        mut writer: W,
        kind: TransportKind,
    ) -> Result<(), ServeError> {
        self.notify_serve_start(kind)?;
        loop {
            match self.serve_one(&mut reader, &mut writer, kind) {
                Ok(Served::Request) => {}
                Ok(Served::Closed) => return Ok(()),
                Err(ServeError::Io(e)) if is_disconnect(&e) => return Ok(()),
                Err(ServeError::Wire(WireError::Io(e))) if is_disconnect(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one request from `reader` and answers it on `writer`.
    pub fn serve_one<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        kind: TransportKind,
    ) -> Result<Served, ServeError> {
        let mut request_stream = match StreamReader::try_open(&mut *reader, self.inner.limits) {
            Ok(Some(stream)) => stream,
            Ok(None) => return Ok(Served::Closed),
            Err(err) => return Err(self.reject_stream(writer, err)),
        };
        let first = match request_stream.next_batch() {
            Ok(first) => first,
            Err(err) => return Err(self.reject_stream(writer, err)),
        };
        // Draining before any validation keeps the byte stream aligned on
        // the next request even when this one is rejected.
        if let Err(err) = request_stream.drain() {
            return Err(self.reject_stream(writer, err));
        }
        let Some(first) = first else {
            let err = WireError::Protocol("request stream carried no batch".into());
            write_error_stream(writer, &empty_schema(), &request_error_info(&err), "")?;
            return Ok(Served::Request);
        };
        let request = match Request::from_batch(first) {
            Ok(request) => request,
            Err(err) => {
                write_error_stream(writer, &empty_schema(), &request_error_info(&err), "")?;
                return Ok(Served::Request);
            }
        };
        let request_id = request
            .request_id()
            .map(str::to_owned)
            .unwrap_or_else(new_request_id);

        if request.method == DESCRIBE_METHOD {
            let (batch, md) = &self.inner.describe;
            let mut out = StreamWriter::try_new(&mut *writer, batch.schema_ref())?;
            out.write(batch, md)?;
            out.finish()?.flush()?;
            return Ok(Served::Request);
        }

        let methods = self.inner.service.methods();
        let Some(index) = methods.iter().position(|m| m.name == request.method) else {
            let mut names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
            names.sort_unstable();
            let listed: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let mut info = ErrorInfo::new(
                "MethodNotImplementedError",
                format!(
                    "Unknown method: '{}'. Available methods: [{}]",
                    request.method,
                    listed.join(", ")
                ),
            );
            info.error_kind = Some("method_not_implemented".into());
            write_error_stream(writer, &empty_schema(), &info, &request_id)?;
            return Ok(Served::Request);
        };
        let description = &methods[index];
        let ctx = CallContext::new(request_id, request.method.clone(), kind);
        let outcome = self.inner.service.call(index, &request.params, &ctx);
        match (description.method_type, outcome) {
            (_, Ok(Outcome::Unary(result))) => {
                let schema = result.schema();
                let mut out = StreamWriter::try_new(&mut *writer, &schema)?;
                write_logs(&mut out, &schema, ctx.take_logs(), &ctx)?;
                out.write(&result, &Metadata::new())?;
                out.finish()?.flush()?;
            }
            (MethodType::Unary, Err(err)) => {
                let schema = description.result_schema.clone();
                let mut out = StreamWriter::try_new(&mut *writer, &schema)?;
                write_logs(&mut out, &schema, ctx.take_logs(), &ctx)?;
                write_error(&mut out, &schema, err.info(), &ctx)?;
                out.finish()?.flush()?;
            }
            (MethodType::Stream, Err(err)) => {
                tracing::debug!(method = %request.method, error = %err, "stream init failed");
                write_error_stream(writer, &empty_schema(), err.info(), ctx.request_id())?;
            }
            (_, Ok(Outcome::Stream(stream))) => {
                self.drive_stream(reader, writer, stream, ctx)?;
            }
        }
        Ok(Served::Request)
    }

    /// Answers a request stream that is not valid Arrow IPC, then reports
    /// the failure so the caller ends the connection.
    fn reject_stream<W: Write>(&self, writer: &mut W, err: WireError) -> ServeError {
        if let WireError::Io(e) = &err
            && is_disconnect(e)
        {
            return ServeError::Wire(err);
        }
        let info = request_error_info(&err);
        // The peer may already be gone; the original error is what matters.
        let _ = write_error_stream(writer, &empty_schema(), &info, "");
        ServeError::Wire(err)
    }

    /// Runs the lockstep phase of a stream (WIRE_PROTOCOL §9).
    fn drive_stream<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        stream: ErasedStream,
        ctx: CallContext,
    ) -> Result<(), ServeError> {
        let ErasedStream {
            mut kind,
            output_schema,
            header,
        } = stream;
        let mut pending_logs = ctx.take_logs();
        if let Some(header) = header {
            let schema = header.schema();
            let mut out = StreamWriter::try_new(&mut *writer, &schema)?;
            write_logs(&mut out, &schema, std::mem::take(&mut pending_logs), &ctx)?;
            out.write(&header, &Metadata::new())?;
            out.finish()?.flush()?;
        }

        let mut input = StreamReader::try_open(&mut *reader, self.inner.limits)?.ok_or(
            WireError::Truncated {
                context: "stream input schema",
            },
        )?;
        let mut out = StreamWriter::try_new(&mut *writer, &output_schema)?;
        write_logs(&mut out, &output_schema, pending_logs, &ctx)?;
        out.get_mut().flush()?;

        let producer_mode = match &kind {
            StreamKind::Producer(_) => true,
            StreamKind::Exchange { input_schema, .. } => input_schema.fields().is_empty(),
        };
        let mut connection_error = None;
        loop {
            let batch = match input.next_batch() {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(err) => {
                    let info = request_error_info(&err);
                    let _ = write_error(&mut out, &output_schema, &info, &ctx);
                    connection_error = Some(err);
                    break;
                }
            };
            let step_ctx = CallContext::new(ctx.request_id(), ctx.method(), ctx.transport());
            if batch.metadata.contains(metadata::CANCEL) {
                match &mut kind {
                    StreamKind::Producer(state) => state.on_cancel(&step_ctx),
                    StreamKind::Exchange { state, .. } => state.on_cancel(&step_ctx),
                }
                break;
            }
            let mut collector = OutputCollector::new(output_schema.clone(), producer_mode);
            let result = match &mut kind {
                StreamKind::Producer(state) => state.produce(&mut collector, &step_ctx),
                StreamKind::Exchange {
                    input_schema,
                    state,
                } => coerce_input(input_schema, batch.batch).and_then(|coerced| {
                    let input = AnnotatedBatch {
                        batch: coerced,
                        metadata: batch.metadata,
                    };
                    state.exchange(&input, &mut collector, &step_ctx)
                }),
            };
            let finished = collector.is_finished();
            match result.and_then(|()| collector.into_entries(step_ctx.take_logs())) {
                Ok(entries) => {
                    for (batch, md) in &entries {
                        out.write(batch, &with_ids(md.clone(), batch, &ctx))?;
                    }
                    out.get_mut().flush()?;
                    if finished {
                        break;
                    }
                }
                Err(err) => {
                    tracing::debug!(method = %ctx.method(), error = %err, "stream failed");
                    write_error(&mut out, &output_schema, err.info(), &ctx)?;
                    break;
                }
            }
        }
        out.finish()?.flush()?;
        if let Some(err) = connection_error {
            return Err(err.into());
        }
        // The client ends its input stream once it has seen ours end; reading
        // up to its EOS leaves the connection ready for the next request.
        input.drain()?;
        Ok(())
    }
}

/// Log batches carry the server and request ids so clients can correlate.
fn with_ids(mut md: Metadata, batch: &RecordBatch, ctx: &CallContext) -> Metadata {
    if batch.num_rows() == 0 && md.contains(metadata::LOG_LEVEL) {
        md.insert(metadata::SERVER_ID, server_id());
        md.insert(metadata::REQUEST_ID, ctx.request_id());
    }
    md
}

fn write_logs<W: Write>(
    out: &mut StreamWriter<W>,
    schema: &SchemaRef,
    logs: Vec<LogRecord>,
    ctx: &CallContext,
) -> Result<(), ServeError> {
    for record in logs {
        let batch = empty_batch(schema);
        out.write(&batch, &with_ids(record.to_metadata(), &batch, ctx))?;
    }
    Ok(())
}

fn write_error<W: Write>(
    out: &mut StreamWriter<W>,
    schema: &SchemaRef,
    info: &ErrorInfo,
    ctx: &CallContext,
) -> Result<(), ServeError> {
    let batch = empty_batch(schema);
    out.write(
        &batch,
        &with_ids(info.to_log_record().to_metadata(), &batch, ctx),
    )?;
    Ok(())
}

fn write_error_stream<W: Write>(
    writer: &mut W,
    schema: &SchemaRef,
    info: &ErrorInfo,
    request_id: &str,
) -> Result<(), ServeError> {
    let mut md = info.to_log_record().to_metadata();
    md.insert(metadata::SERVER_ID, server_id());
    if !request_id.is_empty() {
        md.insert(metadata::REQUEST_ID, request_id);
    }
    let mut out = StreamWriter::try_new(&mut *writer, schema)?;
    out.write(&empty_batch(schema), &md)?;
    out.finish()?.flush()?;
    Ok(())
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}
