//! A connection as the tests use it, and the context a test body gets.

use std::sync::{Arc, Mutex};

use vgirpc::client::{Client, ServerLog, Transport};

use super::checks::Failure;
use crate::service::ConformanceServiceClient;

/// How a test's deadline interrupts a call that hangs.
pub(super) type Interrupt = Arc<dyn Fn() + Send + Sync>;

/// A connection as the tests use it: the typed client, the logs it
/// received, and how to interrupt it.
pub(super) fn connection<T: Transport>(client: Client<T>, interrupt: Interrupt) -> Connection<T> {
    let logs: Arc<Mutex<Vec<ServerLog>>> = Arc::default();
    let sink = logs.clone();
    let client = client.with_log_callback(move |log| lock(&sink).push(log.clone()));
    Connection {
        client: ConformanceServiceClient::new(client),
        logs,
        interrupt,
    }
}

/// Makes a connection of the transport under test.
pub(super) type Connect<'a, T> = &'a dyn Fn() -> Result<Connection<T>, Failure>;

pub(super) struct Connection<T: Transport> {
    pub(super) client: ConformanceServiceClient<T>,
    pub(super) logs: Arc<Mutex<Vec<ServerLog>>>,
    pub(super) interrupt: Interrupt,
}

/// What a test can use: the typed client on the shared connection, the
/// logs it received, and fresh connections for tests that spoil one.
pub(super) struct Ctx<'a, T: Transport> {
    pub(super) client: &'a mut ConformanceServiceClient<T>,
    pub(super) logs: &'a Mutex<Vec<ServerLog>>,
    pub(super) connect: Connect<'a, T>,
    pub(super) fresh: Vec<Interrupt>,
}

impl<T: Transport> Ctx<'_, T> {
    pub(super) fn logs(&self) -> Vec<ServerLog> {
        lock(self.logs).clone()
    }

    pub(super) fn clear_logs(&self) {
        lock(self.logs).clear();
    }

    /// A connection of its own, for calls that leave a byte-stream
    /// connection unusable (stream init errors, WIRE_PROTOCOL §9).
    pub(super) fn fresh(&mut self) -> Result<ConformanceServiceClient<T>, Failure> {
        let connection = (self.connect)()?;
        self.fresh.push(connection.interrupt);
        Ok(connection.client)
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
