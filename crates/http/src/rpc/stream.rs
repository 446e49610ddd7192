//! Stream turns: the init response of a stream that opened, a producer
//! run until it finishes or its response is full, one exchange.

use std::io::Write;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use http::StatusCode;
use vgirpc::RpcError;
use vgirpc::transport::{ActiveStream, Answer, Step};
use vgirpc::wire::WireError;
use vgirpc::wire::ipc::{Chunks, IpcBatch, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::{ErrorInfo, empty_batch};
use vgirpc::wire::metadata::{self, Metadata};

use super::output::internal;
use super::{Caller, Rpc, Turn};
use crate::external::{Entry, data_entry};
use crate::reply::{Failure, Reply, encode_answer, error_stream};

/// Without a response cap, a producer turn still ends once its body holds
/// this much, which bounds the memory a long stream's response takes.
const UNCAPPED_TURN_BYTES: u64 = 16 << 20;

/// Without a response cap, a producer turn also ends after this long, so a
/// slow producer's batches reach the client as they come rather than all at
/// the end. Fast ones finish well within it, in one response.
const UNCAPPED_TURN_TIME: Duration = Duration::from_millis(250);

impl Rpc {
    /// The init response of a stream that opened: its header, then a
    /// producer's first batches or an exchange's first token.
    pub(super) fn opened(
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
        let mut body = Chunks::new();
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
        let tail =
            write_stream_bytes(schema, batches).expect("logs and a token batch always encode");
        body.write_all(&tail)
            .expect("writing to memory cannot fail");
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
    pub(super) fn produce(
        &self,
        stream: &mut ActiveStream,
        init_logs: Vec<Entry>,
        caller: &Caller,
        out: &mut Chunks,
    ) -> (StatusCode, Turn) {
        let schema = stream.output_schema().clone();
        let request_id = stream.request_id().to_owned();
        let start = out.len();
        let mut status = StatusCode::OK;
        let mut turn = Turn::default();
        let result = (|| -> Result<(), WireError> {
            let mut writer = StreamWriter::try_new(&mut *out, &schema)?;
            // Ends the turn on `info`: the error batch closes the stream.
            let mut fail = |writer: &mut StreamWriter<&mut Chunks>, info: ErrorInfo| {
                let (batch, md) = vgirpc::transport::error_batch(&schema, &info, &request_id);
                turn.failure = Some(info);
                writer.write(&batch, &md)
            };
            for (batch, md) in &init_logs {
                writer.write(batch, md)?;
            }
            let mut uploaded = 0;
            let turn_started = Instant::now();
            loop {
                let written = (writer.get_mut().len() - start) as u64;
                stream.set_response_budget(self.budget(written, uploaded as u64));
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
            out.write_all(&error_stream(&schema, &info, &request_id))
                .expect("writing to memory cannot fail");
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
    pub(super) fn exchange_turn(
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
        stream.set_response_budget(self.budget(0, 0));
        let mut entries = match stream.step(input) {
            Step::Continue(entries) | Step::Finished(entries) => entries,
            Step::Failed(entries, _) => {
                let reply = Reply {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: write_stream_bytes(&schema, entries.iter().map(|(b, m)| (b, m)))
                        .expect("an error batch always encodes")
                        .into(),
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
        let mut body = Chunks::new();
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
}

/// The zero-row, empty-schema batch that drives one producer step.
fn tick() -> IpcBatch {
    IpcBatch {
        batch: RecordBatch::new_empty(empty_schema()),
        metadata: Metadata::new(),
    }
}
