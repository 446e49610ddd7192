//! The vgi-rpc access log: one JSON line per RPC call, as the cross-language
//! access-log specification (`docs/access-log-spec.md` of the reference)
//! defines, so one validator checks every port.
//!
//! [`AccessLog`] is a [`DispatchHook`]: add it to a [`vgirpc::Server`] and
//! every transport's calls are logged. Lines are written whole with one
//! write each under a lock, so concurrent calls never interleave; files
//! rotate by renaming (never truncating in place), by size or by time.
//!
//! ```no_run
//! use vgirpc_access_log::{AccessLog, AccessLogConfig};
//! # fn server() -> vgirpc::Server { unimplemented!() }
//!
//! let server = server();
//! let log = AccessLog::open(AccessLogConfig::new("/var/log/vgi/access-{pid}.jsonl"))?;
//! server.add_hook(log);
//! # Ok::<(), vgirpc_access_log::AccessLogError>(())
//! ```

#![warn(missing_docs)]

mod record;
mod rotate;

use std::path::PathBuf;
use std::sync::Mutex;

use vgirpc::{CallRecord, DispatchHook};

pub use rotate::{Interval, Rotation};

/// Everything that can go wrong opening or writing the access log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessLogError {
    /// The log file (or its directory) could not be opened or created.
    #[error("cannot open access log {path}")]
    Open {
        /// The resolved path.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// A rotation interval that is not one of `S`, `M`, `H`, `D`, `midnight`.
    #[error("unknown access-log rotation interval {0:?} (use S, M, H, D or midnight)")]
    BadInterval(String),
    /// Writing or rotating failed.
    #[error("access log i/o failed")]
    Io(#[from] std::io::Error),
}

/// How the access log is written.
#[derive(Debug, Clone)]
pub struct AccessLogConfig {
    /// File path; `{pid}` and `{server_id}` are replaced, so several
    /// processes never share one file.
    pub path: String,
    /// When to start a new file.
    pub rotation: Rotation,
    /// Rotated files kept beside the current one.
    pub backup_count: usize,
    /// Longest line written; larger records shed fields per the spec.
    pub max_record_bytes: usize,
    /// Include the base64 request payload (`request_data`) and plaintext
    /// stream states; otherwise only their size is recorded.
    pub include_payloads: bool,
}

impl AccessLogConfig {
    /// Defaults of the reference: no rotation, 5 backups, 1 MiB records,
    /// payloads left out.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rotation: Rotation::Never,
            backup_count: 5,
            max_record_bytes: 1024 * 1024,
            include_payloads: false,
        }
    }
}

/// A [`DispatchHook`] appending one JSON line per call to a file.
#[derive(Debug)]
pub struct AccessLog {
    config: AccessLogConfig,
    file: Mutex<rotate::RotatingFile>,
}

impl AccessLog {
    /// Opens (appending) the file `config.path` names.
    pub fn open(config: AccessLogConfig) -> Result<Self, AccessLogError> {
        let path = PathBuf::from(
            config
                .path
                .replace("{pid}", &std::process::id().to_string())
                .replace("{server_id}", vgirpc::server_id()),
        );
        let file = rotate::RotatingFile::open(path, config.rotation.clone(), config.backup_count)?;
        Ok(Self {
            config,
            file: Mutex::new(file),
        })
    }

    /// The resolved file path.
    pub fn path(&self) -> PathBuf {
        self.file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .path()
            .to_path_buf()
    }

    /// Writes one record as one line.
    pub fn write(&self, record: &CallRecord) -> Result<(), AccessLogError> {
        let mut line = record::render(record, &self.config);
        line.push('\n');
        self.file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .write_line(line.as_bytes())?;
        Ok(())
    }
}

impl DispatchHook for AccessLog {
    fn on_call(&self, record: &CallRecord) {
        if let Err(err) = self.write(record) {
            // Losing a log line must never fail the call it describes.
            tracing::warn!(error = ?err, "cannot write access log record");
        }
    }
}
