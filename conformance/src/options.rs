//! Command-line flags of the worker, named as the reference worker's.

use std::collections::VecDeque;
use std::time::Duration;

use vgirpc_pipe::UnixConfig;

use crate::http_worker::{HttpFlags, HttpOptions};

pub(crate) const USAGE: &str = "\
usage: vgi-conformance-worker [--unix PATH [--threaded | --no-threaded]
                              [--max-connections N] [--idle-timeout SEC]]

Serves the vgi-rpc ConformanceService; over stdin/stdout by default.

  --unix PATH          listen on a Unix socket; prints UNIX:<path> when ready
  --threaded           serve connections concurrently (default with --unix)
  --no-threaded        serve one connection at a time
  --max-connections N  with --threaded, serve at most N connections at once
  --idle-timeout SEC   exit after SEC seconds without clients (0 disables;
                       default $VGI_RPC_IDLE_TIMEOUT or 300)
  -h, --help           show this help";

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
                other => {
                    if !http.take(other, &mut value)? {
                        return Err(format!("unknown argument {other:?}"));
                    }
                }
            }
        }
        let transport = match unix_path {
            None => {
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
                Transport::Unix(config)
            }
        };
        let transport = match http.finish()? {
            None => transport,
            Some(http) if matches!(transport, Transport::Pipe) => Transport::Http(Box::new(http)),
            Some(_) => return Err("--http and --unix are mutually exclusive".into()),
        };
        Ok(Some(Self { transport }))
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
    fn bad_flags_are_reported() {
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(parse(&["--unix"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--threaded"]).unwrap_err().contains("need --unix"));
        assert!(parse(&["--unix", "x", "--max-connections", "0"]).is_err());
    }
}
