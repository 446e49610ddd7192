//! The vgi-rpc endpoints (WIRE_PROTOCOL §10): unary calls, stream init,
//! stream turns and upload-URL vending, each from a complete request body to
//! a complete Arrow IPC response body.
//!
//! Everything here blocks (methods run, storage is called), so it runs on
//! the runtime's blocking threads, one request per thread.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use http::StatusCode;
use vgirpc::wire::WireError;
use vgirpc::wire::ipc::{
    IpcBatch, ReadLimits, StreamReader, StreamWriter, empty_schema, write_stream_bytes,
};
use vgirpc::wire::log::{ErrorInfo, empty_batch, quoted};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::{Request, request_error_info};
use vgirpc::wire::types::{deserialize_schema, serialize_schema};
use vgirpc::{
    ActiveStream, Answer, Call, CallRecord, CallStatus, FailureKind, OpenStream, Peer, RpcError,
    SavedStream, Server, Step, TransportKind,
};
use vgirpc_token::{Identity, TokenKey, TokenPayload, unix_now};

use crate::auth::{AuthContext, token_identity};
use crate::external::{Entry, ExternalConfig, data_entry, pointer_url};
use crate::layer::sticky::BoundSession;
use crate::storage::UploadUrlProvider;

/// Method name of the upload-URL endpoint's requests.
pub(crate) const UPLOAD_URL_METHOD: &str = "__upload_url__";
/// The most URL pairs one upload-URL request may ask for.
const MAX_UPLOAD_URLS: i64 = 100;

/// Without a response cap, a producer turn still ends once its body holds
/// this much, which bounds the memory a long stream's response takes.
const UNCAPPED_TURN_BYTES: u64 = 16 << 20;

/// Without a response cap, a producer turn also ends after this long, so a
/// slow producer's batches reach the client as they come rather than all at
/// the end. Fast ones finish well within it, in one response.
const UNCAPPED_TURN_TIME: Duration = Duration::from_millis(250);

/// What an endpoint answers: a status and an Arrow IPC body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// What the HTTP layers established about the request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) auth: Arc<AuthContext>,
    /// `ip:port` of the peer, empty when unknown.
    pub(crate) remote_addr: String,
    pub(crate) request_id: String,
    /// The request's sticky session host, on sticky servers.
    pub(crate) session: Option<BoundSession>,
}

impl Caller {
    fn identity(&self) -> Identity {
        token_identity(&self.auth)
    }

    /// The caller as the server core sees it.
    fn peer(&self) -> Peer {
        Peer::anonymous(TransportKind::Http)
            .with_auth(self.auth.clone())
            .with_session(self.session.as_ref().map(|bound| bound.0.clone()))
    }
}

/// How a stream turn ended, beyond its reply: what the access record needs.
#[derive(Debug, Default)]
struct Turn {
    /// The plaintext state handed out in a new token, if one was.
    response_state: Option<Vec<u8>>,
    /// A failure the transport imposed after the method succeeded (a cap).
    failure: Option<ErrorInfo>,
}

/// A sealed continuation token and the plaintext state inside it.
struct Minted {
    token: String,
    state: Vec<u8>,
}

/// A request refused before, or instead of, normal dispatch.
struct Failure {
    status: StatusCode,
    info: ErrorInfo,
    schema: SchemaRef,
}

impl Failure {
    fn new(status: StatusCode, error_type: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            info: ErrorInfo::new(error_type, message),
            schema: empty_schema(),
        }
    }

    fn bad_request(info: ErrorInfo) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            info,
            schema: empty_schema(),
        }
    }

    fn internal(info: ErrorInfo, schema: SchemaRef) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            info,
            schema,
        }
    }

    fn reply(self, request_id: &str) -> Reply {
        Reply {
            status: self.status,
            body: error_stream(&self.schema, &self.info, request_id),
        }
    }
}

/// The configured endpoints of one server.
pub(crate) struct Rpc {
    pub(crate) server: Server,
    pub(crate) key: TokenKey,
    pub(crate) token_ttl_secs: u64,
    pub(crate) max_response_bytes: Option<u64>,
    pub(crate) max_externalized_response_bytes: Option<u64>,
    pub(crate) external: Option<ExternalConfig>,
    pub(crate) upload_urls: Option<Arc<dyn UploadUrlProvider>>,
}

impl Rpc {
    /// `POST {prefix}/{method}`.
    pub(crate) fn unary(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let request = match self.request(method, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        match self.server.dispatch_from(request, &caller.peer()) {
            Call::Answer(mut answer) => {
                let record = answer.record.take();
                let (reply, failure) = self.unary_reply(method, answer, &caller.request_id);
                if let Some(record) = record {
                    self.emit(*record, caller, reply.status, failure.as_ref());
                }
                reply
            }
            Call::Stream(_) => unreachable_stream(method, &caller.request_id),
        }
    }

    /// `POST {prefix}/{method}/init`: a producer runs until it finishes or
    /// the body reaches `max_response_bytes`; an exchange answers with its
    /// first token.
    pub(crate) fn init(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let request = match self.request(method, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        match self.server.dispatch_from(request, &caller.peer()) {
            Call::Answer(mut answer) => {
                let record = answer.record.take();
                let reply = answer_reply(&answer);
                if let Some(record) = record {
                    self.emit(*record, caller, reply.status, None);
                }
                reply
            }
            Call::Stream(open) => {
                let OpenStream {
                    header,
                    init_logs,
                    mut stream,
                } = *open;
                let (reply, turn) = self.opened(header, init_logs, &mut stream, caller);
                let mut record = stream.take_record();
                record.response_state = turn.response_state;
                self.emit(record, caller, reply.status, turn.failure.as_ref());
                reply
            }
        }
    }

    /// `POST {prefix}/{method}/exchange`: one turn of a stream whose state
    /// arrives in the input batch's token.
    pub(crate) fn exchange(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let opened = || -> Result<(IpcBatch, ActiveStream, Vec<u8>), Failure> {
            // Only the first batch matters; later bytes are not read.
            let input = read_batch(body, self.server.limits(), false)?;
            let token = input.metadata.get(metadata::STREAM_STATE).ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "RuntimeError",
                    "Missing state token in exchange request",
                )
            })?;
            let (stream, state) = self.restore(method, token, caller)?;
            Ok((input, stream, state))
        };
        let (input, mut stream, request_state) = match opened() {
            Ok(opened) => opened,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        let (reply, turn) = if input.metadata.contains(metadata::CANCEL) {
            stream.cancel();
            let body = write_stream_bytes(stream.output_schema(), [])
                .expect("an empty stream always encodes");
            let reply = Reply {
                status: StatusCode::OK,
                body,
            };
            (reply, Turn::default())
        } else if stream.input_schema().fields().is_empty() {
            let mut body = Vec::new();
            let (status, turn) = self.produce(&mut stream, Vec::new(), caller, &mut body);
            (Reply { status, body }, turn)
        } else {
            self.exchange_turn(method, &mut stream, input, caller)
        };
        let mut record = stream.take_record();
        record.request_state = Some(request_state);
        record.response_state = turn.response_state;
        self.emit(record, caller, reply.status, turn.failure.as_ref());
        reply
    }

    /// `POST {prefix}/__upload_url__/init`: `count` (default 1, at most 100)
    /// pre-signed upload/download URL pairs.
    pub(crate) fn upload_urls(&self, body: &Bytes, caller: &Caller) -> Reply {
        let Some(provider) = &self.upload_urls else {
            return answer_reply(
                &self
                    .server
                    .unknown_method(UPLOAD_URL_METHOD, &caller.request_id),
            );
        };
        let request = match self.request(UPLOAD_URL_METHOD, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        let count = request
            .params
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .filter(|c| c.len() == 1 && !c.is_null(0))
            .map_or(1, |c| c.value(0))
            .clamp(1, MAX_UPLOAD_URLS);
        let schema = upload_url_schema();
        let urls = (0..count)
            .map(|_| provider.upload_url())
            .collect::<Result<Vec<_>, _>>();
        let urls = match urls {
            Ok(urls) => urls,
            Err(err) => {
                let info =
                    ErrorInfo::new("RuntimeError", format!("cannot vend upload URLs: {err}"));
                return Failure::internal(info, schema).reply(&caller.request_id);
            }
        };
        let micros = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    urls.iter().map(|u| u.upload_url.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    urls.iter().map(|u| u.download_url.as_str()),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        urls.iter().map(|u| micros(u.expires_at)),
                    )
                    .with_timezone("UTC"),
                ),
            ],
        )
        .expect("the columns match the upload-URL schema");
        Reply {
            status: StatusCode::OK,
            body: write_stream_bytes(&schema, [(&batch, &Metadata::new())])
                .expect("an upload-URL batch always encodes"),
        }
    }

    /// Reads and validates a request for `method`, resolving a pointer batch.
    fn request(&self, method: &str, body: &Bytes, caller: &Caller) -> Result<Request, Failure> {
        let batch = read_batch(body, self.server.limits(), true)?;
        let batch = match &self.external {
            // The dispatch metadata is the outer batch's; only the
            // parameters come from storage.
            Some(external) if pointer_url(&batch).is_some() => {
                let metadata = batch.metadata.clone();
                let resolved = external
                    .resolve(batch)
                    .map_err(|e| Failure::internal(e.info().clone(), empty_schema()))?;
                IpcBatch {
                    batch: resolved.batch,
                    metadata,
                }
            }
            _ => batch,
        };
        let mut request =
            Request::from_batch(batch).map_err(|e| Failure::bad_request(request_error_info(&e)))?;
        if request.method != method {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "TypeError",
                format!(
                    "Method name mismatch: URL path has '{}' but Arrow IPC custom_metadata \
                     'vgi_rpc.method' has '{}'. These must match.",
                    quoted(method),
                    quoted(&request.method)
                ),
            ));
        }
        if request.request_id().is_none() {
            request
                .metadata
                .insert(metadata::REQUEST_ID, caller.request_id.clone());
        }
        Ok(request)
    }

    /// A unary answer, with its result externalized and both caps enforced.
    fn unary_reply(
        &self,
        method: &str,
        mut answer: Answer,
        request_id: &str,
    ) -> (Reply, Option<ErrorInfo>) {
        if answer.failure.is_some() {
            return (answer_reply(&answer), None);
        }
        let schema = answer.schema.clone();
        let fail = |info: ErrorInfo| {
            let reply = Failure::internal(info.clone(), schema.clone()).reply(request_id);
            (reply, Some(info))
        };
        let mut uploaded = 0;
        if let (Some(external), Some(index)) = (&self.external, data_entry(&answer.batches)) {
            let result = &answer.batches[index].0;
            let predicted = if result.num_rows() > 0 {
                external.predict(result)
            } else {
                0
            };
            if let Some(message) = self.external_overshoot(method, predicted) {
                return fail(ErrorInfo::new("RuntimeError", message));
            }
            let entry = answer.batches.remove(index);
            match external.externalize_batch(&schema, entry) {
                Ok((entry, bytes)) => {
                    answer.batches.insert(index, entry);
                    uploaded = bytes;
                }
                Err(err) => return fail(err.info().clone()),
            }
        }
        let body = encode_answer(&answer);
        match self.overshoot(method, body.len(), uploaded) {
            Some(message) => fail(ErrorInfo::new("RuntimeError", message)),
            None => {
                let reply = Reply {
                    status: StatusCode::OK,
                    body,
                };
                (reply, None)
            }
        }
    }

    /// The init response of a stream that opened: its header, then a
    /// producer's first batches or an exchange's first token.
    fn opened(
        &self,
        header: Option<Answer>,
        init_logs: Vec<Entry>,
        stream: &mut ActiveStream,
        caller: &Caller,
    ) -> (Reply, Turn) {
        let fail = |info: ErrorInfo| {
            let reply = Failure::internal(info.clone(), empty_schema()).reply(&caller.request_id);
            let turn = Turn {
                failure: Some(info),
                ..Turn::default()
            };
            (reply, turn)
        };
        let mut body = Vec::new();
        if let Some(mut header) = header {
            if let (Some(external), Some(index)) = (&self.external, data_entry(&header.batches)) {
                let entry = header.batches.remove(index);
                match external.externalize_batch(&header.schema, entry) {
                    Ok((entry, _)) => header.batches.insert(index, entry),
                    Err(err) => return fail(err.info().clone()),
                }
            }
            body = encode_answer(&header);
        }
        if stream.input_schema().fields().is_empty() {
            let (status, turn) = self.produce(stream, init_logs, caller, &mut body);
            return (Reply { status, body }, turn);
        }
        let minted = match self.mint(stream, caller) {
            Ok(minted) => minted,
            Err(err) => return fail(err.info().clone()),
        };
        let schema = stream.output_schema();
        let token_md = Metadata::new().with(metadata::STREAM_STATE, minted.token);
        let token_batch = empty_batch(schema);
        let batches = init_logs
            .iter()
            .map(|(b, m)| (b, m))
            .chain([(&token_batch, &token_md)]);
        body.extend(
            write_stream_bytes(schema, batches).expect("logs and a token batch always encode"),
        );
        let reply = Reply {
            status: StatusCode::OK,
            body,
        };
        let turn = Turn {
            response_state: Some(minted.state),
            failure: None,
        };
        (reply, turn)
    }

    /// Runs a producer until it finishes, fails, or the body reaches
    /// `max_response_bytes`, and then hands out a continuation token.
    /// Without a cap a turn ends at [`UNCAPPED_TURN_BYTES`] or after
    /// [`UNCAPPED_TURN_TIME`], so a short stream arrives in one response.
    /// Appends one IPC stream to `out`.
    ///
    /// The wire cap is soft here (the token covers the overshoot); the
    /// external cap is hard and is checked before each upload.
    fn produce(
        &self,
        stream: &mut ActiveStream,
        init_logs: Vec<Entry>,
        caller: &Caller,
        out: &mut Vec<u8>,
    ) -> (StatusCode, Turn) {
        let schema = stream.output_schema().clone();
        let request_id = stream.request_id().to_owned();
        let start = out.len();
        let mut status = StatusCode::OK;
        let mut turn = Turn::default();
        let result = (|| -> Result<(), WireError> {
            let mut writer = StreamWriter::try_new(&mut *out, &schema)?;
            // Ends the turn on `info`: the error batch closes the stream.
            let mut fail = |writer: &mut StreamWriter<&mut Vec<u8>>, info: ErrorInfo| {
                let (batch, md) = vgirpc::error_batch(&schema, &info, &request_id);
                turn.failure = Some(info);
                writer.write(&batch, &md)
            };
            for (batch, md) in &init_logs {
                writer.write(batch, md)?;
            }
            let mut uploaded = 0;
            let turn_started = Instant::now();
            loop {
                let entries = match stream.step(tick()) {
                    Step::Continue(entries) => entries,
                    Step::Finished(entries) => {
                        if let Err(err) = self.write_cycle(&mut writer, &schema, entries) {
                            fail(&mut writer, err.info().clone())?;
                        }
                        break;
                    }
                    Step::Failed(entries, _) => {
                        for (batch, md) in &entries {
                            writer.write(batch, md)?;
                        }
                        break;
                    }
                };
                if let Some(external) = &self.external {
                    let predicted = external.predict_cycle(&entries);
                    if predicted > 0
                        && let Some(message) =
                            self.external_overshoot(stream.method(), uploaded + predicted)
                    {
                        fail(&mut writer, ErrorInfo::new("RuntimeError", message))?;
                        status = StatusCode::INTERNAL_SERVER_ERROR;
                        break;
                    }
                }
                match self.write_cycle(&mut writer, &schema, entries) {
                    Ok(bytes) => uploaded += bytes,
                    Err(err) => {
                        fail(&mut writer, err.info().clone())?;
                        break;
                    }
                }
                let written = (writer.get_mut().len() - start) as u64;
                let room = match self.max_response_bytes {
                    Some(cap) => written < cap,
                    // An exchange without input columns is driven like a
                    // producer here, as the reference does, but must still
                    // answer each turn's input with one output.
                    None if stream.is_exchange() => false,
                    None => {
                        written < UNCAPPED_TURN_BYTES && turn_started.elapsed() < UNCAPPED_TURN_TIME
                    }
                };
                if room {
                    continue;
                }
                match self.mint(stream, caller) {
                    Ok(minted) => {
                        let md = Metadata::new().with(metadata::STREAM_STATE, minted.token);
                        writer.write(&empty_batch(&schema), &md)?;
                        turn.response_state = Some(minted.state);
                    }
                    Err(err) => fail(&mut writer, err.info().clone())?,
                }
                break;
            }
            writer.finish()?;
            Ok(())
        })();
        if let Err(err) = result {
            // Encoding into memory only fails on a bug; answer cleanly anyway.
            tracing::error!(%err, "cannot encode a producer response");
            out.truncate(start);
            let info = ErrorInfo::new("RuntimeError", format!("cannot encode the response: {err}"));
            out.extend(error_stream(&schema, &info, &request_id));
            turn = Turn {
                response_state: None,
                failure: Some(info),
            };
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        (status, turn)
    }

    /// One exchange: the input batch in, the output batch (carrying the
    /// refreshed token) out, both caps strict.
    fn exchange_turn(
        &self,
        method: &str,
        stream: &mut ActiveStream,
        input: IpcBatch,
        caller: &Caller,
    ) -> (Reply, Turn) {
        let schema = stream.output_schema().clone();
        let fail = |info: ErrorInfo, schema: SchemaRef| {
            let reply = Failure::internal(info.clone(), schema).reply(&caller.request_id);
            let turn = Turn {
                response_state: None,
                failure: Some(info),
            };
            (reply, turn)
        };
        let mut input = match &self.external {
            Some(external) => match external.resolve(input) {
                Ok(input) => input,
                Err(err) => return fail(err.info().clone(), empty_schema()),
            },
            None => input,
        };
        input.metadata.remove(metadata::STREAM_STATE);
        let mut entries = match stream.step(input) {
            Step::Continue(entries) | Step::Finished(entries) => entries,
            Step::Failed(entries, _) => {
                let reply = Reply {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: write_stream_bytes(&schema, entries.iter().map(|(b, m)| (b, m)))
                        .expect("an error batch always encodes"),
                };
                return (reply, Turn::default());
            }
        };
        let minted = match self.mint(stream, caller) {
            Ok(minted) => minted,
            Err(err) => return fail(err.info().clone(), schema),
        };
        match data_entry(&entries) {
            Some(index) => entries[index]
                .1
                .insert(metadata::STREAM_STATE, minted.token),
            None => entries.push((
                empty_batch(&schema),
                Metadata::new().with(metadata::STREAM_STATE, minted.token),
            )),
        }
        if let Some(external) = &self.external
            && let Some(message) = self.external_overshoot(method, external.predict_cycle(&entries))
        {
            return fail(ErrorInfo::new("RuntimeError", message), schema);
        }
        let mut body = Vec::new();
        let written = (|| -> Result<usize, RpcError> {
            let mut writer = StreamWriter::try_new(&mut body, &schema).map_err(internal)?;
            let uploaded = self.write_cycle(&mut writer, &schema, entries)?;
            writer.finish().map_err(internal)?;
            Ok(uploaded)
        })();
        let uploaded = match written {
            Ok(uploaded) => uploaded,
            Err(err) => return fail(err.info().clone(), schema),
        };
        if let Some(message) = self.overshoot(method, body.len(), uploaded) {
            return fail(ErrorInfo::new("RuntimeError", message), schema);
        }
        let reply = Reply {
            status: StatusCode::OK,
            body,
        };
        let turn = Turn {
            response_state: Some(minted.state),
            failure: None,
        };
        (reply, turn)
    }

    /// Writes one output cycle, externalized when its data batch is large.
    /// Returns the bytes uploaded.
    fn write_cycle(
        &self,
        writer: &mut StreamWriter<&mut Vec<u8>>,
        schema: &SchemaRef,
        entries: Vec<Entry>,
    ) -> Result<usize, RpcError> {
        let (entries, uploaded) = match &self.external {
            Some(external) => external.externalize_cycle(schema, entries)?,
            None => (entries, 0),
        };
        for (batch, md) in &entries {
            writer.write(batch, md).map_err(internal)?;
        }
        Ok(uploaded)
    }

    /// Seals the stream's state into a continuation token.
    fn mint(&self, stream: &ActiveStream, caller: &Caller) -> Result<Minted, RpcError> {
        let saved = stream.save()?;
        let payload = TokenPayload {
            created_at: unix_now(),
            state: saved.state,
            output_schema: serialize_schema(&saved.output_schema),
            input_schema: serialize_schema(&saved.input_schema),
            stream_id: saved.stream_id,
        };
        let token = payload.seal(&self.key, &caller.identity());
        Ok(Minted {
            token,
            state: payload.state,
        })
    }

    /// Opens a continuation token and rebuilds its stream; also returns the
    /// plaintext state, for the access record.
    fn restore(
        &self,
        method: &str,
        token: &str,
        caller: &Caller,
    ) -> Result<(ActiveStream, Vec<u8>), Failure> {
        let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "RuntimeError", message);
        let payload = TokenPayload::open(
            token,
            &self.key,
            &caller.identity(),
            self.token_ttl_secs,
            unix_now(),
        )
        .map_err(|err| {
            // The precise reason stays in the log; the client gets the
            // reference's uniform text.
            tracing::info!(%err, method, "rejected a state token");
            bad(err.client_message().to_owned())
        })?;
        let output_schema = deserialize_schema(&payload.output_schema)
            .map_err(|e| bad(format!("Failed to deserialize output schema: {e}")))?;
        let input_schema = deserialize_schema(&payload.input_schema)
            .map_err(|e| bad(format!("Failed to deserialize input schema: {e}")))?;
        let state = payload.state.clone();
        let saved = SavedStream {
            state: payload.state,
            output_schema: Arc::new(output_schema),
            input_schema: Arc::new(input_schema),
            stream_id: payload.stream_id,
        };
        let stream = self
            .server
            .resume(method, saved, caller.request_id.clone(), &caller.peer())
            .map_err(|e| bad(format!("Failed to deserialize state: {}", e.message())))?;
        Ok((stream, state))
    }

    /// Completes a call's record with what HTTP knows and hands it to the
    /// server's hooks (the access log). The status is the one the reference
    /// logs: 500 for method failures, although the client sees 200.
    fn emit(
        &self,
        mut record: CallRecord,
        caller: &Caller,
        status: StatusCode,
        failure: Option<&ErrorInfo>,
    ) {
        record.http_status = Some(status.as_u16());
        record.remote_addr = caller.remote_addr.clone();
        if let Some(info) = failure {
            record.status = CallStatus::Error {
                error_type: info.error_type.clone(),
                message: info.message.clone(),
            };
        }
        self.server.emit(&record);
    }

    /// The error text when a response breaks either cap.
    fn overshoot(&self, method: &str, wire_bytes: usize, uploaded: usize) -> Option<String> {
        if let Some(cap) = self.max_response_bytes
            && wire_bytes as u64 > cap
        {
            return Some(format!(
                "HTTP body exceeds max_response_bytes ({wire_bytes} > {cap}) for method '{method}'"
            ));
        }
        self.external_overshoot(method, uploaded)
    }

    /// The error text when `uploaded` bytes would break the external cap.
    fn external_overshoot(&self, method: &str, uploaded: usize) -> Option<String> {
        let cap = self.max_externalized_response_bytes?;
        (uploaded as u64 > cap).then(|| {
            format!(
                "Externalised payload exceeds max_externalized_response_bytes ({uploaded} > {cap}) \
                 for method '{method}'"
            )
        })
    }
}

/// The HTTP status for an answer: 400 for protocol and type errors, 404 for
/// unknown methods, 500 for other method failures (the transport sends those
/// as 200 with `X-VGI-RPC-Error`).
fn status_of(failure: &Option<(FailureKind, ErrorInfo)>) -> StatusCode {
    match failure {
        None => StatusCode::OK,
        Some((FailureKind::Protocol, _)) => StatusCode::BAD_REQUEST,
        Some((FailureKind::UnknownMethod, _)) => StatusCode::NOT_FOUND,
        Some((_, info)) if info.error_type == "TypeError" => StatusCode::BAD_REQUEST,
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn answer_reply(answer: &Answer) -> Reply {
    Reply {
        status: status_of(&answer.failure),
        body: encode_answer(answer),
    }
}

fn encode_answer(answer: &Answer) -> Vec<u8> {
    let mut body = Vec::new();
    answer
        .write_to(&mut body)
        .expect("answers encode into memory");
    body
}

/// Reads the first batch of a request body within the server's read
/// limits; with `drain`, also checks the stream is complete.
/// Reads the first batch of a request body; its buffers are slices of
/// `body`, which the request already holds, not copies.
fn read_batch(body: &Bytes, limits: ReadLimits, drain: bool) -> Result<IpcBatch, Failure> {
    let bad = |err: WireError| Failure::bad_request(request_error_info(&err));
    let mut reader = StreamReader::try_open_bytes(Cursor::new(body.clone()), limits)
        .map_err(bad)?
        .ok_or_else(|| {
            bad(WireError::Truncated {
                context: "request body is empty",
            })
        })?;
    let batch = reader.next_batch().map_err(bad)?.ok_or_else(|| {
        bad(WireError::Protocol(
            "request stream carried no batch".into(),
        ))
    })?;
    if drain {
        reader.drain().map_err(bad)?;
    }
    Ok(batch)
}

/// The zero-row, empty-schema batch that drives one producer step.
fn tick() -> IpcBatch {
    IpcBatch {
        batch: RecordBatch::new_empty(empty_schema()),
        metadata: Metadata::new(),
    }
}

fn internal(err: WireError) -> RpcError {
    RpcError::runtime_error(format!("cannot encode the response: {err}"))
}

/// A complete IPC stream holding one error batch.
pub(crate) fn error_stream(schema: &SchemaRef, info: &ErrorInfo, request_id: &str) -> Vec<u8> {
    let (batch, md) = vgirpc::error_batch(schema, info, request_id);
    write_stream_bytes(schema, [(&batch, &md)]).expect("an error batch always encodes")
}

/// Stream methods reach `/init`, not the unary endpoint; the router checks.
fn unreachable_stream(method: &str, request_id: &str) -> Reply {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "TypeError",
        format!("Stream method '{method}' requires /init and /exchange endpoints"),
    )
    .reply(request_id)
}

fn upload_url_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("upload_url", DataType::Utf8, true),
        Field::new("download_url", DataType::Utf8, true),
        Field::new(
            "expires_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}
