//! Command-line flags of the worker, named as the reference worker's.

use std::collections::VecDeque;
use std::time::Duration;

use vgirpc_access_log::{AccessLogConfig, Rotation};
use vgirpc_conformance::observe::Reporting;
use vgirpc_pipe::UnixConfig;

use crate::http_worker::{HttpFlags, HttpOptions};

pub(crate) const USAGE: &str = "\
usage: vgi-conformance-worker [--unix PATH [--threaded | --no-threaded]
                              [--max-connections N] [--idle-timeout SEC]
                              [--body-read-timeout SEC|none]]

Serves the vgi-rpc ConformanceService; over stdin/stdout by default.

  --unix PATH          listen on a Unix socket; prints UNIX:<path> when ready
  --threaded           serve connections concurrently (default with --unix)
  --no-threaded        serve one connection at a time
  --max-connections N  with --threaded, hold at most N connections open at
                       once, idle or busy (default 4096); more wait to connect
  --idle-timeout SEC   exit after SEC seconds without clients (0 disables;
                       default $VGI_RPC_IDLE_TIMEOUT or 300)
  --body-read-timeout SEC|none
                       longest pause in the middle of a message a client has
                       begun sending; the connection is then closed (0 or
                       none disables; default 30; with --http, see below)

  --access-log PATH    append one JSON line per call to PATH ({pid} and
                       {server_id} are replaced; env VGI_RPC_ACCESS_LOG)
  --access-log-max-bytes N        rotate at N bytes (0 = never)
  --access-log-when INTERVAL      rotate every S, M, H, D or at midnight
  --access-log-backup-count N     rotated files kept (default 5)
  --access-log-max-record-bytes N longest record line (default 1048576)
  --access-log-debug   include request payloads in records
  --observe-discard    Sentry and OpenTelemetry on, as a deployment would
                       run them, with every report dropped: a client whose
                       transport discards envelopes, spans recorded with no
                       exporter, metrics aggregated for a discarding
                       exporter (for benchmarks; overrides SENTRY_DSN)
  --observe-bare-span  one span per call through the OpenTelemetry SDK, with
                       no attributes, dropped, and nothing else reported:
                       the SDK's own cost (for benchmarks)
  -h, --help           show this help

With SENTRY_DSN set, failed calls are reported to that Sentry project.";

/// Where the worker serves.
#[derive(Debug)]
pub(crate) enum Transport {
    Pipe,
    Unix(UnixConfig),
    Http(Box<HttpOptions>),
}

/// Parsed command line.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) transport: Transport,
    pub(crate) access_log: Option<AccessLogConfig>,
    /// What is reported besides the answers.
    pub(crate) reporting: Reporting,
}

/// `VGI_RPC_*` environment defaults, as the reference worker reads them.
fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(raw) => raw
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got {raw:?}")),
        Err(_) => Ok(default),
    }
}

fn number(flag: &str, raw: &str) -> Result<u64, String> {
    raw.parse()
        .map_err(|_| format!("{flag} takes a whole number, got {raw:?}"))
}

fn seconds(flag: &str, raw: &str) -> Result<Option<Duration>, String> {
    let secs: f64 = raw
        .parse()
        .map_err(|_| format!("{flag} takes seconds, got {raw:?}"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{flag} takes a non-negative number, got {raw:?}"));
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

impl Options {
    /// `Ok(None)` when help was asked for.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut args: VecDeque<String> = args.into_iter().collect();
        let mut unix_path = None;
        let mut threaded = None;
        let mut max_connections = None;
        let mut idle_timeout = None;
        let mut body_read_timeout = None;
        let mut access_log = std::env::var("VGI_RPC_ACCESS_LOG").ok();
        let mut log_max_bytes = env_number("VGI_RPC_ACCESS_LOG_MAX_BYTES", 0)?;
        let mut log_when = std::env::var("VGI_RPC_ACCESS_LOG_WHEN").ok();
        let mut log_backups = env_number("VGI_RPC_ACCESS_LOG_BACKUP_COUNT", 5)?;
        let mut log_record_bytes = env_number("VGI_RPC_ACCESS_LOG_MAX_RECORD_BYTES", 1 << 20)?;
        let mut log_debug = false;
        let mut reporting = Reporting::FromEnv;
        let mut http = HttpFlags::default();
        while let Some(arg) = args.pop_front() {
            // Both `--flag value` and `--flag=value` are accepted.
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, v)) if flag.starts_with("--") => (flag.to_owned(), Some(v.to_owned())),
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.pop_front())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--unix" => unix_path = Some(value()?),
                "--threaded" => threaded = Some(true),
                "--no-threaded" => threaded = Some(false),
                "--max-connections" => {
                    let raw = value()?;
                    let n = raw
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("--max-connections takes a positive integer, got {raw:?}")
                        })?;
                    max_connections = Some(n);
                }
                "--idle-timeout" => idle_timeout = Some(seconds("--idle-timeout", &value()?)?),
                // Both transports have this flag; which one it is for is
                // known once every flag is read.
                "--body-read-timeout" => body_read_timeout = Some(value()?),
                "--access-log" => access_log = Some(value()?),
                "--access-log-max-bytes" => log_max_bytes = number(&flag, &value()?)?,
                "--access-log-when" => log_when = Some(value()?),
                "--access-log-backup-count" => log_backups = number(&flag, &value()?)?,
                "--access-log-max-record-bytes" => log_record_bytes = number(&flag, &value()?)?,
                "--access-log-debug" => log_debug = true,
                "--observe-discard" => reporting = Reporting::Discard,
                "--observe-bare-span" => reporting = Reporting::BareSpan,
                other => {
                    if !http.take(other, &mut value)? {
                        return Err(format!("unknown argument {other:?}"));
                    }
                }
            }
        }
        let transport = match unix_path {
            None => {
                if let Some(raw) = body_read_timeout.take() {
                    http.take("--body-read-timeout", &mut || Ok(raw.clone()))?;
                }
                if threaded.is_some() || max_connections.is_some() || idle_timeout.is_some() {
                    return Err(
                        "--threaded, --max-connections and --idle-timeout need --unix".into(),
                    );
                }
                Transport::Pipe
            }
            Some(path) => {
                let idle_timeout = match idle_timeout {
                    Some(idle) => idle,
                    None => match std::env::var("VGI_RPC_IDLE_TIMEOUT") {
                        Ok(raw) => seconds("VGI_RPC_IDLE_TIMEOUT", &raw)?,
                        Err(_) => Some(Duration::from_secs(300)),
                    },
                };
                let mut config = UnixConfig::new(path);
                config.threaded = threaded.unwrap_or(true);
                config.max_connections = max_connections;
                config.idle_timeout = idle_timeout;
                if let Some(raw) = body_read_timeout {
                    config.body_read_timeout = match raw.as_str() {
                        "none" => None,
                        raw => seconds("--body-read-timeout", raw)?,
                    };
                }
                Transport::Unix(config)
            }
        };
        let transport = match http.finish()? {
            None => transport,
            Some(http) if matches!(transport, Transport::Pipe) => Transport::Http(Box::new(http)),
            Some(_) => return Err("--http and --unix are mutually exclusive".into()),
        };
        let access_log = match access_log.filter(|p| !p.is_empty()) {
            None => None,
            Some(path) => {
                let mut config = AccessLogConfig::new(path);
                config.rotation = match (log_max_bytes, log_when) {
                    (0, None) => Rotation::Never,
                    (max, None) => Rotation::Size(max),
                    (0, Some(when)) => {
                        Rotation::Interval(when.parse().map_err(|e| format!("{e}"))?)
                    }
                    (_, Some(_)) => {
                        return Err(
                            "--access-log-max-bytes and --access-log-when are mutually exclusive"
                                .into(),
                        );
                    }
                };
                config.backup_count = usize::try_from(log_backups).unwrap_or(usize::MAX);
                config.max_record_bytes = usize::try_from(log_record_bytes).unwrap_or(usize::MAX);
                config.include_payloads = log_debug;
                Some(config)
            }
        };
        Ok(Some(Self {
            transport,
            access_log,
            reporting,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn no_flags_means_pipe() {
        assert!(matches!(
            parse(&[]).unwrap().unwrap().transport,
            Transport::Pipe
        ));
    }

    #[test]
    fn the_reporting_flags_choose_what_is_reported() {
        let reporting = |args: &[&str]| parse(args).unwrap().unwrap().reporting;
        assert_eq!(reporting(&[]), Reporting::FromEnv);
        assert_eq!(reporting(&["--observe-discard"]), Reporting::Discard);
        assert_eq!(reporting(&["--observe-bare-span"]), Reporting::BareSpan);
    }

    #[test]
    fn unix_flags_are_read() {
        let options = parse(&[
            "--unix",
            "/tmp/s.sock",
            "--no-threaded",
            "--idle-timeout=2.5",
        ])
        .unwrap()
        .unwrap();
        let Transport::Unix(config) = options.transport else {
            panic!("expected unix");
        };
        assert_eq!(config.path.to_str(), Some("/tmp/s.sock"));
        assert!(!config.threaded);
        assert_eq!(config.idle_timeout, Some(Duration::from_millis(2500)));
        let zero = parse(&["--unix", "x", "--idle-timeout", "0"])
            .unwrap()
            .unwrap();
        let Transport::Unix(config) = zero.transport else {
            panic!("expected unix");
        };
        assert_eq!(config.idle_timeout, None);
    }

    #[test]
    fn the_body_read_timeout_goes_to_the_transport_served() {
        let unix = |args: &[&str]| match parse(args).unwrap().unwrap().transport {
            Transport::Unix(config) => config.body_read_timeout,
            _ => panic!("expected unix"),
        };
        assert_eq!(
            unix(&["--unix", "x"]),
            Some(vgirpc_pipe::DEFAULT_BODY_READ_TIMEOUT)
        );
        assert_eq!(
            unix(&["--body-read-timeout", "2.5", "--unix", "x"]),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(unix(&["--unix", "x", "--body-read-timeout", "none"]), None);
        assert_eq!(unix(&["--unix", "x", "--body-read-timeout=0"]), None);
        assert!(parse(&["--unix", "x", "--body-read-timeout", "soon"]).is_err());
        let http = parse(&["--http", "--body-read-timeout", "7"])
            .unwrap()
            .unwrap();
        assert!(matches!(http.transport, Transport::Http(_)));
        assert!(parse(&["--body-read-timeout", "7"]).is_err());
    }

    #[test]
    fn access_log_flags_are_read() {
        let options = parse(&[
            "--access-log",
            "/tmp/a-{pid}.jsonl",
            "--access-log-max-bytes",
            "500",
        ])
        .unwrap()
        .unwrap();
        let config = options.access_log.unwrap();
        assert_eq!(config.path, "/tmp/a-{pid}.jsonl");
        assert_eq!(config.rotation, Rotation::Size(500));
        let clash = parse(&[
            "--access-log",
            "x",
            "--access-log-max-bytes",
            "1",
            "--access-log-when",
            "H",
        ]);
        assert!(clash.unwrap_err().contains("mutually exclusive"));
    }

    #[test]
    fn bad_flags_are_reported() {
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse(&["--unix"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--threaded"]).unwrap_err().contains("need --unix"));
        assert!(parse(&["--unix", "x", "--max-connections", "0"]).is_err());
    }
}
