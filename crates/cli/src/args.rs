//! The command line: global options, a command and its arguments.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::CliError;

pub(crate) const USAGE: &str = "\
usage: vgi-rpc [OPTIONS] <COMMAND> [ARGS]

Calls methods of a vgi-rpc service.

Commands:
  describe                    list the service's methods with their parameters
  call METHOD [KEY=VALUE...]  call METHOD; a stream method prints every batch

Connection (exactly one):
  -c, --cmd COMMAND   spawn COMMAND (split like a shell would) and talk to it
                      over its stdin/stdout
      --unix PATH     connect to a worker listening on a Unix socket
  -u, --url URL       connect to an HTTP server, e.g. http://127.0.0.1:8000
                      or https://rpc.example.com (HTTP/2 when it offers it)
  -p, --prefix PATH   URL path prefix for --url (default: none)
  -H, --header NAME:VALUE
                      send this header with every request of --url
                      (repeatable)
      --bearer TOKEN  send `Authorization: Bearer TOKEN` with every request
                      of --url (default: $VGI_RPC_BEARER, if set)
      --ca-cert FILE  trust the PEM CA certificates in FILE for https://,
                      beside the system's roots
      --client-cert FILE  present this PEM client certificate (mTLS)
      --client-key FILE   its PEM private key
      --http2         speak HTTP/2 from the first byte (h2c) on http://

Output:
  -f, --format FMT    auto, table, tsv, json or arrow (default: auto, which is
                      table on a terminal and tab-separated otherwise)
  -o, --output FILE   write to FILE instead of standard output
  -v, --verbose       print server log messages (and worker stderr) on stderr

Call options:
  -j, --json OBJECT   parameters as a JSON object instead of KEY=VALUE
  -i, --input FILE    exchange: send each batch of the Arrow IPC stream or
                      file FILE ('-' reads standard input) and print each
                      answer; without it a stream is driven as a producer

  -h, --help          print this help
  -V, --version       print the version

KEY=VALUE values are typed by the method's parameter schema: numbers,
true/false, text; dates as 2026-04-25, timestamps as 2026-04-25T12:00:00,
times as 12:30:45, durations as a count of the type's unit, decimals as
12.34; lists, maps and structs as JSON. Omitted parameters take the
server's defaults.

Exit status: 0 on success, 1 when the call fails, 2 for usage errors.";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Aligned text table.
    Table,
    /// Tab-separated values.
    Tsv,
    /// One JSON object per line.
    Json,
    /// Arrow IPC stream bytes.
    Arrow,
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A worker command line.
    Command(String),
    /// A Unix socket path.
    Unix(PathBuf),
    /// An HTTP base URL.
    Url(String),
}

/// The command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Help,
    Version,
    Describe,
    Call {
        method: String,
        assignments: Vec<String>,
        json: Option<String>,
        input: Option<PathBuf>,
    },
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) target: Option<Target>,
    pub(crate) prefix: Option<String>,
    /// `--header` pairs, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// `--bearer`; the environment's default is applied when connecting.
    pub(crate) bearer: Option<String>,
    pub(crate) tls: TlsFiles,
    /// `--http2`: h2c with prior knowledge.
    pub(crate) http2: bool,
    /// `None` means auto.
    pub(crate) format: Option<Format>,
    pub(crate) output: Option<PathBuf>,
    pub(crate) verbose: bool,
    pub(crate) action: Action,
}

/// The PEM files of `--ca-cert`, `--client-cert` and `--client-key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

impl TlsFiles {
    pub(crate) fn any(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

/// Parses the arguments after the program name. Options may come before
/// or after the command.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, CliError> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut targets = Vec::new();
    let mut prefix = None;
    let mut headers = Vec::new();
    let mut bearer = None;
    let mut tls = TlsFiles::default();
    let mut http2 = false;
    let mut format = None;
    let mut output = None;
    let mut verbose = false;
    let mut json = None;
    let mut input = None;
    let mut positional: Vec<String> = Vec::new();
    let mut help = false;
    let mut version = false;

    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Short('c') | Long("cmd") => targets.push(Target::Command(text(&mut parser)?)),
            Long("unix") => targets.push(Target::Unix(parser.value().map_err(usage)?.into())),
            Short('u') | Long("url") => targets.push(Target::Url(text(&mut parser)?)),
            Short('p') | Long("prefix") => prefix = Some(text(&mut parser)?),
            Short('H') | Long("header") => headers.push(parse_header(&text(&mut parser)?)?),
            Long("bearer") => bearer = Some(text(&mut parser)?),
            Long("ca-cert") => tls.ca_cert = Some(parser.value().map_err(usage)?.into()),
            Long("client-cert") => tls.client_cert = Some(parser.value().map_err(usage)?.into()),
            Long("client-key") => tls.client_key = Some(parser.value().map_err(usage)?.into()),
            Long("http2") => http2 = true,
            Short('f') | Long("format") => format = parse_format(&text(&mut parser)?)?,
            Short('o') | Long("output") => output = Some(parser.value().map_err(usage)?.into()),
            Short('v') | Long("verbose") => verbose = true,
            Short('j') | Long("json") => json = Some(text(&mut parser)?),
            Short('i') | Long("input") => input = Some(parser.value().map_err(usage)?.into()),
            Value(value) => positional.push(
                value
                    .into_string()
                    .map_err(|v| CliError::Usage(format!("argument {v:?} is not valid UTF-8")))?,
            ),
            other => return Err(usage(other.unexpected())),
        }
    }

    let action = if help {
        Action::Help
    } else if version {
        Action::Version
    } else {
        let mut positional = positional.into_iter();
        match positional.next().as_deref() {
            None => return Err(CliError::Usage("no command given (try --help)".into())),
            Some("describe") => {
                if let Some(extra) = positional.next() {
                    return Err(CliError::Usage(format!(
                        "describe takes no arguments, got {extra:?}"
                    )));
                }
                if json.is_some() || input.is_some() {
                    return Err(CliError::Usage(
                        "--json and --input only apply to call".into(),
                    ));
                }
                Action::Describe
            }
            Some("call") => {
                let method = positional
                    .next()
                    .ok_or_else(|| CliError::Usage("call needs a METHOD".into()))?;
                let assignments: Vec<String> = positional.collect();
                if json.is_some() && !assignments.is_empty() {
                    return Err(CliError::Usage(
                        "--json and KEY=VALUE parameters are mutually exclusive".into(),
                    ));
                }
                Action::Call {
                    method,
                    assignments,
                    json,
                    input,
                }
            }
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "unknown command {other:?} (expected describe or call)"
                )));
            }
        }
    };
    if targets.len() > 1 {
        return Err(CliError::Usage(
            "--cmd, --unix and --url are mutually exclusive".into(),
        ));
    }
    Ok(Args {
        target: targets.pop(),
        prefix,
        headers,
        bearer,
        tls,
        http2,
        format,
        output,
        verbose,
        action,
    })
}

fn text(parser: &mut lexopt::Parser) -> Result<String, CliError> {
    parser
        .value()
        .map_err(usage)?
        .into_string()
        .map_err(|v| CliError::Usage(format!("option value {v:?} is not valid UTF-8")))
}

/// `NAME:VALUE`, as curl takes it; spaces around the value are dropped.
fn parse_header(text: &str) -> Result<(String, String), CliError> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(CliError::Usage(format!(
            "--header takes NAME:VALUE, got {text:?}"
        ))),
    }
}

fn parse_format(name: &str) -> Result<Option<Format>, CliError> {
    Ok(match name {
        "auto" => None,
        "table" => Some(Format::Table),
        "tsv" => Some(Format::Tsv),
        "json" => Some(Format::Json),
        "arrow" => Some(Format::Arrow),
        other => {
            return Err(CliError::Usage(format!(
                "unknown format {other:?} (expected auto, table, tsv, json or arrow)"
            )));
        }
    })
}

fn usage(err: lexopt::Error) -> CliError {
    CliError::Usage(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Args, CliError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = parse_str(&["--cmd", "w --x", "call", "echo", "value=hi", "-f", "json"]).unwrap();
        let b = parse_str(&["-f", "json", "call", "-c", "w --x", "echo", "value=hi"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.target, Some(Target::Command("w --x".into())));
        assert_eq!(a.format, Some(Format::Json));
        assert_eq!(
            a.action,
            Action::Call {
                method: "echo".into(),
                assignments: vec!["value=hi".into()],
                json: None,
                input: None,
            }
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            &["describe", "extra"][..],
            &["call"],
            &["frobnicate"],
            &[],
            &["--cmd", "a", "--url", "b", "describe"],
            &["--format", "xml", "describe"],
            &["call", "m", "k=v", "--json", "{}"],
            &["--bogus", "describe"],
        ] {
            let err = parse_str(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn headers_and_a_bearer_token() {
        let args = parse_str(&[
            "-u",
            "http://h",
            "-H",
            "X-Tenant: blue",
            "--header=X-Trace:1",
            "--bearer",
            "s3cret",
            "describe",
        ])
        .unwrap();
        assert_eq!(
            args.headers,
            [
                ("X-Tenant".to_owned(), "blue".to_owned()),
                ("X-Trace".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(args.bearer.as_deref(), Some("s3cret"));
        let err = parse_str(&["-u", "http://h", "-H", "no colon", "describe"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--header takes NAME:VALUE, got \"no colon\""
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse_str(&["call", "--help"]).unwrap().action, Action::Help);
    }
}
