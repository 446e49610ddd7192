//! Connections shared by the tasks of one async client: each call takes a
//! connection for itself and gives it back when it is done.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::Connection;
use crate::ClientError;

type Connect =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Connection, ClientError>> + Send>> + Send + Sync;

/// Up to `size` connections, opened as calls need them.
pub(crate) struct Pool {
    connect: Box<Connect>,
    idle: Mutex<Vec<Connection>>,
    slots: Arc<Semaphore>,
}

impl Pool {
    /// A pool of at most `size` connections made by `connect`, holding
    /// `first` already.
    pub(crate) fn new<F, Fut>(size: usize, first: Connection, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Connection, ClientError>> + Send + 'static,
    {
        Self {
            connect: Box::new(move || Box::pin(connect())),
            idle: Mutex::new(vec![first]),
            slots: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic elsewhere cannot leave the list half-changed.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection for one call: an idle one, or a new one while the pool
    /// has room; otherwise waits for one to come back.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Checkout, ClientError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClientError::ConnectionClosed)?;
        let idle = self.idle().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => (self.connect)().await?,
        };
        Ok(Checkout {
            connection: Some(connection),
            pool: self.clone(),
            reusable: false,
            _slot: slot,
        })
    }
}

/// A connection taken from the pool. It goes back only when the call using
/// it left it between requests ([`Checkout::release`]); a call that failed
/// or was abandoned half-way drops it, and the pool opens another.
pub(crate) struct Checkout {
    connection: Option<Connection>,
    pool: Arc<Pool>,
    reusable: bool,
    _slot: OwnedSemaphorePermit,
}

impl Checkout {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.connection
            .as_mut()
            .expect("a checkout holds its connection until dropped")
    }

    /// Marks the connection as ready for the next call.
    pub(crate) fn release(&mut self) {
        self.reusable = true;
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if self.reusable
            && let Some(connection) = self.connection.take()
        {
            self.pool.idle().push(connection);
        }
    }
}

/// Whether a call that ended with `result` left its connection between
/// requests: it did unless the byte stream itself failed.
pub(crate) fn leaves_connection_aligned<T>(result: &Result<T, ClientError>) -> bool {
    matches!(result, Ok(_) | Err(ClientError::Remote { .. }))
}
