//! Process-wide counters that let cancellation tests observe the server.
//!
//! With `VGI_RPC_CONFORMANCE_PROBE_FILE` set, the counters live in that JSON
//! file under an advisory lock instead, so several worker processes behind
//! one client (round-robin HTTP) share a single set.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

/// One of the observed counters.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Produce,
    Exchange,
    OnCancel,
}

impl Counter {
    fn key(self) -> &'static str {
        match self {
            Counter::Produce => "produce_calls",
            Counter::Exchange => "exchange_calls",
            Counter::OnCancel => "on_cancel_calls",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

static LOCAL: Mutex<[i64; 3]> = Mutex::new([0; 3]);

const ALL: [Counter; 3] = [Counter::Produce, Counter::Exchange, Counter::OnCancel];

/// Access to the cancel-probe counters.
#[derive(Debug)]
pub struct CancelProbe;

fn shared_path() -> Option<String> {
    std::env::var("VGI_RPC_CONFORMANCE_PROBE_FILE")
        .ok()
        .filter(|p| !p.is_empty())
}

fn parse(raw: &str) -> [i64; 3] {
    let json: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    ALL.map(|c| json.get(c.key()).and_then(|v| v.as_i64()).unwrap_or(0))
}

fn render(counts: [i64; 3]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = ALL
        .iter()
        .map(|c| (c.key().to_owned(), counts[c.slot()].into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn update_file(path: &str, change: impl FnOnce(&mut [i64; 3])) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    let mut raw = String::new();
    file.read_to_string(&mut raw)?;
    let mut counts = parse(&raw);
    change(&mut counts);
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    file.write_all(render(counts).as_bytes())?;
    file.flush()
}

impl CancelProbe {
    /// Adds one to `counter`.
    pub fn bump(counter: Counter) {
        match shared_path() {
            None => {
                LOCAL.lock().unwrap_or_else(|e| e.into_inner())[counter.slot()] += 1;
            }
            Some(path) => {
                if let Err(err) = update_file(&path, |c| c[counter.slot()] += 1) {
                    tracing::warn!(%path, %err, "cannot update the shared cancel probe");
                }
            }
        }
    }

    /// `[produce_calls, exchange_calls, on_cancel_calls]`.
    pub fn snapshot() -> [i64; 3] {
        match shared_path() {
            None => *LOCAL.lock().unwrap_or_else(|e| e.into_inner()),
            Some(path) => {
                let read = || -> std::io::Result<[i64; 3]> {
                    let mut file = File::open(&path)?;
                    file.lock_shared()?;
                    let mut raw = String::new();
                    file.read_to_string(&mut raw)?;
                    Ok(parse(&raw))
                };
                read().unwrap_or([0; 3])
            }
        }
    }

    /// Zeroes every counter.
    pub fn reset() {
        *LOCAL.lock().unwrap_or_else(|e| e.into_inner()) = [0; 3];
        if let Some(path) = shared_path()
            && let Err(err) = update_file(&path, |c| *c = [0; 3])
        {
            tracing::warn!(%path, %err, "cannot reset the shared cancel probe");
        }
    }
}
