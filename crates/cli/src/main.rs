//! `vgi-rpc`: the command-line client of vgi-rpc.
//!
//! Describes a service and calls its methods, with parameters typed from
//! the service's own `__describe__` answer:
//!
//! ```text
//! vgi-rpc --cmd "vgi-conformance-worker" describe
//! vgi-rpc --cmd "vgi-conformance-worker" call echo_string value=hi
//! vgi-rpc --cmd "vgi-conformance-worker" call produce_n count=3 --format json
//! vgi-rpc --unix /tmp/worker.sock call echo_string value=hi
//! vgi-rpc --url http://127.0.0.1:8000 --prefix /vgi describe
//! ```
//!
//! Run `vgi-rpc --help` for every option.

mod args;
mod error;
mod params;
mod render;

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode};

use arrow_array::RecordBatch;
use vgirpc_client::http::HttpOptions;
use vgirpc_client::{Client, ServerLog, StderrMode, StreamCall, SubprocessOptions, Transport};
use vgirpc_wire::describe::{MethodDescription, MethodType, ServiceDescription};
use vgirpc_wire::ipc::StreamReader;

use crate::args::{Action, Args, Format, Target, TlsFiles, USAGE};
use crate::error::CliError;
use crate::render::{Printer, schema_line};

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(err) => return fail(&err),
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &CliError) -> ExitCode {
    // A reader that stopped early (`vgi-rpc ... | head`) is not an error.
    if let CliError::Io { source, .. } = err
        && source.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    eprintln!("vgi-rpc: {}", err.one_line());
    ExitCode::from(err.exit_code())
}

fn run(args: Args) -> Result<(), CliError> {
    match &args.action {
        Action::Help => {
            println!("{USAGE}");
            return Ok(());
        }
        Action::Version => {
            println!("vgi-rpc {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Action::Describe | Action::Call { .. } => {}
    }
    match connect(&args)? {
        Connected::Worker(client) => session(client, &args),
        Connected::Unix(client) => session(client, &args),
        Connected::Http(client) => session(*client, &args),
    }
}

/// A client over whichever transport the command line named.
enum Connected {
    Worker(Client<vgirpc_client::SubprocessTransport>),
    Unix(Client<vgirpc_client::UnixTransport>),
    // Boxed: an HTTP client carries its runtime and connection pool.
    Http(Box<Client<vgirpc_client::http::HttpTransport>>),
}

/// Runs the command's action on `client`, then closes it.
fn session<T: Transport>(mut client: Client<T>, args: &Args) -> Result<(), CliError> {
    if args.verbose {
        client.set_log_callback(print_log);
    }
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Tsv
    });
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .map_err(CliError::io(format!("cannot create {}", path.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut printer = Printer::new(out, format);
    let result = match &args.action {
        Action::Describe => describe(&mut client, &mut printer),
        Action::Call {
            method,
            assignments,
            json,
            input,
        } => call(
            &mut client,
            &mut printer,
            method,
            assignments,
            json.as_deref(),
            input.as_deref(),
        ),
        Action::Help | Action::Version => Ok(()),
    };
    let finished = printer.finish();
    // The connection is closed whatever happened (a worker is stopped);
    // the first failure is reported.
    let closed = client.close().map_err(CliError::from);
    result.and(finished).and(closed)
}

/// The bearer token `--url` sends when `--bearer` is not given.
const BEARER_ENV: &str = "VGI_RPC_BEARER";

fn connect(args: &Args) -> Result<Connected, CliError> {
    let target = args.target.as_ref().ok_or_else(|| {
        CliError::Usage("say where the service is: --cmd COMMAND, --unix PATH or --url URL".into())
    })?;
    let http_only = [
        ("--prefix", args.prefix.is_some()),
        ("--header", !args.headers.is_empty()),
        ("--bearer", args.bearer.is_some()),
        ("--ca-cert, --client-cert and --client-key", args.tls.any()),
        ("--http2", args.http2),
    ];
    if let Some((flag, _)) = http_only.iter().find(|(_, given)| *given)
        && !matches!(target, Target::Url(_))
    {
        return Err(CliError::Usage(format!("{flag} only applies to --url")));
    }
    match target {
        Target::Command(line) => spawn(line, args.verbose).map(Connected::Worker),
        Target::Unix(path) => Ok(Connected::Unix(Client::connect_unix(path)?)),
        Target::Url(url) => {
            let mut options = HttpOptions::new().prefix(args.prefix.clone().unwrap_or_default());
            for (name, value) in &args.headers {
                options = options.header(name, value);
            }
            let bearer = args
                .bearer
                .clone()
                .or_else(|| std::env::var(BEARER_ENV).ok().filter(|t| !t.is_empty()));
            if let Some(token) = bearer {
                options = options.bearer_token(token);
            }
            options = tls_options(options, &args.tls)?.http2_prior_knowledge(args.http2);
            let client = Client::connect_http_with(url, options)?;
            Ok(Connected::Http(Box::new(client)))
        }
    }
}

/// Adds the CA and the client certificate of the TLS flags to `options`.
fn tls_options(mut options: HttpOptions, files: &TlsFiles) -> Result<HttpOptions, CliError> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(CliError::io(format!(
            "cannot read the {what} {}",
            path.display()
        )))
    };
    if let Some(ca) = &files.ca_cert {
        options = options.ca_certificate_pem(read(ca, "CA certificate")?);
    }
    match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            options = options.client_certificate_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            );
        }
        (None, None) => {}
        _ => {
            return Err(CliError::Usage(
                "--client-cert and --client-key go together".into(),
            ));
        }
    }
    Ok(options)
}

/// Spawns the worker `command_line` names.
fn spawn(
    command_line: &str,
    verbose: bool,
) -> Result<Client<vgirpc_client::SubprocessTransport>, CliError> {
    let words = shlex::split(command_line)
        .filter(|words| !words.is_empty())
        .ok_or_else(|| {
            CliError::Usage(format!("cannot split --cmd {command_line:?} into words"))
        })?;
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    // Worker stderr stays out of the output unless asked for; its last lines
    // still explain a worker that dies.
    let stderr = if verbose {
        StderrMode::Forward
    } else {
        StderrMode::Capture
    };
    Ok(Client::spawn_with(
        command,
        SubprocessOptions::default().stderr(stderr),
    )?)
}

fn print_log(log: &ServerLog) {
    eprintln!("[{}] {}", log.level, log.message);
}

fn describe<T: Transport, W: Write>(
    client: &mut Client<T>,
    printer: &mut Printer<W>,
) -> Result<(), CliError> {
    let description = client.describe()?;
    match printer.format() {
        Format::Json => printer.line(&describe_json(&description).to_string()),
        Format::Arrow => {
            let raw = client.call(
                vgirpc_wire::describe::DESCRIBE_METHOD,
                &vgirpc_client::no_params(),
            )?;
            printer.batch(&raw.batch)
        }
        Format::Table => {
            printer.line(&format!("RPC Service: {}", description.protocol_name))?;
            printer.line(&format!("  server_id: {}", description.server_id))?;
            printer.line(&format!(
                "  request_version: {}",
                description.request_version
            ))?;
            printer.line(&format!(
                "  describe_version: {}",
                description.describe_version
            ))?;
            printer.line(&format!("  protocol_hash: {}", description.protocol_hash))?;
            for method in &description.methods {
                printer.line("")?;
                printer.line(&format!("  {}({})", method.name, kind(method)))?;
                if !method.params_schema.fields().is_empty() {
                    printer.line(&format!(
                        "    params: {}",
                        schema_line(&method.params_schema)
                    ))?;
                }
                for (name, schema) in &method.embedded_params {
                    printer.line(&format!("    {name} as JSON: {}", schema_line(schema)))?;
                }
                if method.has_return {
                    printer.line(&format!(
                        "    returns: {}",
                        schema_line(&method.result_schema)
                    ))?;
                }
                if let Some(header) = &method.header_schema {
                    printer.line(&format!("    header: {}", schema_line(header)))?;
                }
            }
            Ok(())
        }
        Format::Tsv => {
            printer.line("method\ttype\tparams\treturns\theader")?;
            for method in &description.methods {
                let returns = if method.has_return {
                    schema_line(&method.result_schema)
                } else {
                    String::new()
                };
                let header = method
                    .header_schema
                    .as_ref()
                    .map(|h| schema_line(h))
                    .unwrap_or_default();
                printer.line(&format!(
                    "{}\t{}\t{}\t{returns}\t{header}",
                    method.name,
                    kind(method),
                    schema_line(&method.params_schema)
                ))?;
            }
            Ok(())
        }
    }
}

fn kind(method: &MethodDescription) -> &'static str {
    method.method_type.as_str()
}

fn describe_json(description: &ServiceDescription) -> serde_json::Value {
    let methods: serde_json::Map<String, serde_json::Value> = description
        .methods
        .iter()
        .map(|m| {
            let mut entry = serde_json::json!({
                "method_type": kind(m),
                "has_return": m.has_return,
                "params_schema": schema_line(&m.params_schema),
                "result_schema": schema_line(&m.result_schema),
            });
            if let Some(header) = &m.header_schema {
                entry["header_schema"] = schema_line(header).into();
            }
            if !m.embedded_params.is_empty() {
                // Struct parameters the server reads from IPC bytes, with
                // the fields a JSON object for them must have.
                entry["struct_params"] = m
                    .embedded_params
                    .iter()
                    .map(|(name, schema)| (name.clone(), schema_line(schema).into()))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            (m.name.clone(), entry)
        })
        .collect();
    serde_json::json!({
        "protocol_name": description.protocol_name,
        "server_id": description.server_id,
        "request_version": description.request_version,
        "describe_version": description.describe_version,
        "protocol_hash": description.protocol_hash,
        "methods": methods,
    })
}

fn call<T: Transport, W: Write>(
    client: &mut Client<T>,
    printer: &mut Printer<W>,
    method: &str,
    assignments: &[String],
    json: Option<&str>,
    input: Option<&Path>,
) -> Result<(), CliError> {
    let description = client.describe()?;
    let Some(target) = description.method(method) else {
        let names: Vec<&str> = description
            .methods
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        return Err(CliError::Usage(format!(
            "unknown method '{method}'; available: {}",
            names.join(", ")
        )));
    };
    let params = params::build(target, assignments, json)?;
    match target.method_type {
        MethodType::Unary => {
            if input.is_some() {
                return Err(CliError::Usage(format!(
                    "--input applies to stream methods; {method} is unary"
                )));
            }
            let result = client.call(method, &params)?;
            printer.result(&result.batch)
        }
        MethodType::Stream => {
            let mut stream = if target.header_schema.is_some() {
                client.stream_with_header(method, &params)?
            } else {
                client.stream(method, &params)?
            };
            if let Some(header) = stream.header() {
                let header = header.clone();
                printer.header(&header)?;
            }
            match input {
                Some(path) => exchange_all(&mut stream, printer, path)?,
                None => {
                    while let Some(batch) = stream.next_batch()? {
                        printer.batch(&batch)?;
                    }
                }
            }
            stream.close()?;
            Ok(())
        }
    }
}

/// Sends every batch of an Arrow IPC stream or file and prints each answer.
fn exchange_all<T: Transport, W: Write>(
    stream: &mut StreamCall<'_, T>,
    printer: &mut Printer<W>,
    path: &Path,
) -> Result<(), CliError> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    let read = if name == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        File::open(path).and_then(|f| BufReader::new(f).read_to_end(&mut bytes))
    };
    read.map_err(CliError::io(format!("cannot read {name}")))?;
    for batch in input_batches(&bytes, &name)? {
        let answer = stream.exchange(&batch)?;
        printer.batch(&answer)?;
    }
    Ok(())
}

/// The batches of an Arrow IPC file (`ARROW1` magic) or stream.
fn input_batches(bytes: &[u8], name: &str) -> Result<Vec<RecordBatch>, CliError> {
    if bytes.starts_with(b"ARROW1") {
        let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(CliError::arrow(format!(
                "{name} is not a valid Arrow IPC file"
            )))?;
        return reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError::arrow(format!("cannot read a batch of {name}")));
    }
    let mut reader = StreamReader::open(bytes).map_err(CliError::arrow(format!(
        "{name} is not an Arrow IPC stream or file"
    )))?;
    let mut batches = Vec::new();
    while let Some(batch) = reader
        .next_batch()
        .map_err(CliError::arrow(format!("cannot read a batch of {name}")))?
    {
        batches.push(batch.batch);
    }
    Ok(batches)
}
