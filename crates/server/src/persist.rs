//! Saving a running stream so another request, or another process, can
//! resume it.
//!
//! Connection-bound transports (pipe, Unix socket) keep a stream's state in
//! memory for the life of the connection. Stateless HTTP cannot: between two
//! turns the state travels with the client inside a sealed token, and any
//! worker sharing the token key must be able to rebuild it, including one
//! that never saw the stream open. So a state type registers a decoder in a
//! process-wide registry under a stable key, and the saved form names that
//! key. `#[vgirpc::stream_state]` on a state's `ProducerState` or
//! `ExchangeState` impl does both halves; the state itself encodes as its
//! `#[derive(ArrowStruct)]` IPC stream, like the reference's dataclass states.
//!
//! The saved state is versioned so a future layout can be told apart:
//!
//! ```text
//! format u8 (= 1) | kind u8 (0 producer, 1 exchange)
//!   | method_len u16 LE | method | key_len u16 LE | key | state payload
//! ```
//!
//! The method name is recorded so a token minted for one method cannot be
//! replayed against another.

use std::collections::HashMap;
use std::sync::OnceLock;

use arrow_schema::SchemaRef;
use vgirpc_wire::types::ArrowStruct;

use crate::error::RpcError;
use crate::state::{
    AsyncExchangeState, AsyncProducerState, AsyncStep, Exchange, ExchangeState, Producer,
    ProducerState, SavedState, SyncStep,
};

const FORMAT: u8 = 1;
const PRODUCER: u8 = 0;
const EXCHANGE: u8 = 1;

/// Everything a stream needs to continue elsewhere: the versioned state and
/// the two schemas it was opened with.
#[derive(Debug, Clone)]
pub struct SavedStream {
    /// The encoded state (see the module documentation for its layout).
    pub state: Vec<u8>,
    /// Schema of the batches the stream emits.
    pub output_schema: SchemaRef,
    /// Schema of the client's input batches (empty for producers).
    pub input_schema: SchemaRef,
    /// Id shared by every turn of the stream, for correlating access records.
    pub stream_id: String,
}

type ProducerDecoder = fn(&[u8]) -> Result<Box<dyn Producer>, RpcError>;
type ExchangeDecoder = fn(&[u8]) -> Result<Box<dyn Exchange>, RpcError>;

/// How to rebuild a state of one registered type.
#[derive(Clone, Copy)]
pub(crate) enum Decoder {
    Producer(ProducerDecoder),
    Exchange(ExchangeDecoder),
}

/// One registry entry, submitted by `#[vgirpc::stream_state]` expansions.
#[doc(hidden)]
pub struct StateRegistration {
    key: &'static str,
    decoder: Decoder,
}

impl std::fmt::Debug for StateRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRegistration")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl StateRegistration {
    /// Registers `T` as a producer state under `key`.
    pub const fn producer<T: ProducerState + ArrowStruct>(key: &'static str) -> Self {
        Self {
            key,
            decoder: Decoder::Producer(decode_producer::<T>),
        }
    }

    /// Registers `T` as an exchange state under `key`.
    pub const fn exchange<T: ExchangeState + ArrowStruct>(key: &'static str) -> Self {
        Self {
            key,
            decoder: Decoder::Exchange(decode_exchange::<T>),
        }
    }

    /// Registers `T` as an async producer state under `key`.
    pub const fn async_producer<T: AsyncProducerState + ArrowStruct>(key: &'static str) -> Self {
        Self {
            key,
            decoder: Decoder::Producer(decode_async_producer::<T>),
        }
    }

    /// Registers `T` as an async exchange state under `key`.
    pub const fn async_exchange<T: AsyncExchangeState + ArrowStruct>(key: &'static str) -> Self {
        Self {
            key,
            decoder: Decoder::Exchange(decode_async_exchange::<T>),
        }
    }
}

inventory::collect!(StateRegistration);

fn decode_state<T: ArrowStruct>(bytes: &[u8]) -> Result<T, RpcError> {
    T::from_ipc_bytes(bytes).map_err(|e| {
        RpcError::runtime_error(format!(
            "cannot decode saved {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

fn decode_producer<T: ProducerState + ArrowStruct>(
    bytes: &[u8],
) -> Result<Box<dyn Producer>, RpcError> {
    Ok(Box::new(SyncStep(decode_state::<T>(bytes)?)))
}

fn decode_exchange<T: ExchangeState + ArrowStruct>(
    bytes: &[u8],
) -> Result<Box<dyn Exchange>, RpcError> {
    Ok(Box::new(SyncStep(decode_state::<T>(bytes)?)))
}

fn decode_async_producer<T: AsyncProducerState + ArrowStruct>(
    bytes: &[u8],
) -> Result<Box<dyn Producer>, RpcError> {
    Ok(Box::new(AsyncStep(decode_state::<T>(bytes)?)))
}

fn decode_async_exchange<T: AsyncExchangeState + ArrowStruct>(
    bytes: &[u8],
) -> Result<Box<dyn Exchange>, RpcError> {
    Ok(Box::new(AsyncStep(decode_state::<T>(bytes)?)))
}

/// Encodes a registered state; called by `#[vgirpc::stream_state]` expansions.
#[doc(hidden)]
pub fn save_state<T: ArrowStruct>(key: &'static str, state: &T) -> Result<SavedState, RpcError> {
    let bytes = state.to_ipc_bytes().map_err(|e| {
        RpcError::runtime_error(format!(
            "cannot encode {} for a continuation token: {e}",
            std::any::type_name::<T>()
        ))
    })?;
    Ok(SavedState { key, bytes })
}

/// Registry lookups; a key registered twice (only possible with explicit
/// `key = "..."` overrides) is refused rather than resolved arbitrarily.
fn decoder(key: &str) -> Result<Decoder, RpcError> {
    static REGISTRY: OnceLock<HashMap<&'static str, Option<Decoder>>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        let mut map = HashMap::new();
        for entry in inventory::iter::<StateRegistration> {
            map.entry(entry.key)
                .and_modify(|slot: &mut Option<Decoder>| {
                    tracing::error!(key = entry.key, "two stream state types share one key");
                    *slot = None;
                })
                .or_insert(Some(entry.decoder));
        }
        map
    });
    match registry.get(key) {
        Some(Some(decoder)) => Ok(*decoder),
        Some(None) => Err(RpcError::runtime_error(format!(
            "stream state key {key:?} is registered by more than one type"
        ))),
        None => Err(RpcError::runtime_error(format!(
            "no stream state type is registered under {key:?} in this process"
        ))),
    }
}

/// A decoded state, ready to become an `ActiveStream` again.
pub(crate) enum RestoredState {
    Producer(Box<dyn Producer>),
    Exchange(Box<dyn Exchange>),
}

/// Wraps a saved state in the versioned envelope.
pub(crate) fn encode(method: &str, is_exchange: bool, saved: SavedState) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + method.len() + saved.key.len() + saved.bytes.len());
    out.push(FORMAT);
    out.push(if is_exchange { EXCHANGE } else { PRODUCER });
    for part in [method.as_bytes(), saved.key.as_bytes()] {
        let len = u16::try_from(part.len()).expect("method names and state keys are short");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&saved.bytes);
    out
}

/// Unwraps the envelope and rebuilds the state for `method`.
pub(crate) fn decode(method: &str, envelope: &[u8]) -> Result<RestoredState, RpcError> {
    let malformed = || RpcError::runtime_error("saved stream state is malformed");
    let [format, kind, rest @ ..] = envelope else {
        return Err(malformed());
    };
    if *format != FORMAT {
        return Err(RpcError::runtime_error(format!(
            "saved stream state has format {format}, expected {FORMAT}"
        )));
    }
    let mut rest = rest;
    let mut take = || -> Result<&[u8], RpcError> {
        let [lo, hi, tail @ ..] = rest else {
            return Err(malformed());
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi]));
        if tail.len() < len {
            return Err(malformed());
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        Ok(part)
    };
    let saved_method = take()?;
    let key = std::str::from_utf8(take()?).map_err(|_| malformed())?;
    if saved_method != method.as_bytes() {
        return Err(RpcError::runtime_error(format!(
            "saved stream state belongs to method {:?}, not {method:?}",
            String::from_utf8_lossy(saved_method)
        )));
    }
    let payload = rest;
    match (*kind, decoder(key)?) {
        (PRODUCER, Decoder::Producer(decode)) => decode(payload).map(RestoredState::Producer),
        (EXCHANGE, Decoder::Exchange(decode)) => decode(payload).map(RestoredState::Exchange),
        _ => Err(RpcError::runtime_error(format!(
            "saved stream state of kind {kind} does not match the type registered under {key:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::OutputCollector;
    use crate::context::CallContext;

    const KEY: &str = "persist::tests::Ticks";

    #[derive(Debug, PartialEq, vgirpc_macros::ArrowStruct)]
    #[arrow(crate = "vgirpc_wire")]
    struct Ticks {
        left: i64,
    }

    impl ProducerState for Ticks {
        fn produce(&mut self, out: &mut OutputCollector, _: &CallContext) -> Result<(), RpcError> {
            out.finish()
        }

        fn save_state(&self) -> Result<SavedState, RpcError> {
            save_state(KEY, self)
        }
    }

    inventory::submit! { StateRegistration::producer::<Ticks>(KEY) }

    fn saved() -> SavedState {
        Ticks { left: 3 }.save_state().unwrap()
    }

    #[test]
    fn a_registered_state_round_trips() {
        let envelope = encode("tick", false, saved());
        assert_eq!(envelope[..2], [FORMAT, PRODUCER]);
        assert!(matches!(
            decode("tick", &envelope),
            Ok(RestoredState::Producer(_))
        ));
    }

    #[test]
    fn mismatches_are_refused_with_their_reason() {
        let message = |result: Result<RestoredState, RpcError>| match result {
            Ok(_) => panic!("decoded"),
            Err(err) => err.message().to_owned(),
        };
        let envelope = encode("tick", false, saved());
        assert!(message(decode("tock", &envelope)).contains("belongs to method"));
        let exchange = encode("tick", true, saved());
        assert!(message(decode("tick", &exchange)).contains("does not match"));
        let unknown = encode(
            "tick",
            false,
            SavedState {
                key: "nowhere::Else",
                bytes: Vec::new(),
            },
        );
        assert!(message(decode("tick", &unknown)).contains("no stream state type"));
        let mut future = envelope.clone();
        future[0] = 2;
        assert!(message(decode("tick", &future)).contains("format 2"));
        for cut in [0, 1, 3, 6] {
            assert!(message(decode("tick", &envelope[..cut])).contains("malformed"));
        }
    }

    #[test]
    fn unregistered_states_say_how_to_fix_it() {
        struct Plain;
        impl ProducerState for Plain {
            fn produce(
                &mut self,
                out: &mut OutputCollector,
                _: &CallContext,
            ) -> Result<(), RpcError> {
                out.finish()
            }
        }
        let err = Plain.save_state().unwrap_err();
        assert!(err.message().contains("Plain"));
        assert!(err.message().contains("#[vgirpc::stream_state]"));
    }
}
