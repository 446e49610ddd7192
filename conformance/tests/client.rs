//! The client conformance suite as a test: our typed client over every
//! transport against our worker, and against the Python reference worker
//! when its venv exists (`cargo xtask conformance` creates it), with the
//! same observations required from both within each family of transports.

use std::time::Duration;

use vgirpc_conformance::client_suite::{self, Report, Server, TransportKind, Verdict};

fn failures(report: &Report) -> Vec<String> {
    report
        .outcomes
        .iter()
        .filter_map(|o| match &o.verdict {
            Verdict::Failed(message) => Some(format!("{}: {message}", o.test)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_typed_client_passes_against_every_available_worker() {
    let mut servers = vec![Server {
        name: "rust".into(),
        program: env!("CARGO_BIN_EXE_vgi-conformance-worker").into(),
        args: Vec::new(),
        tls_and_http2: true,
    }];
    if let Some(bin) = vgirpc_conformance::reference::venv_bin() {
        servers.push(Server {
            name: "python-reference".into(),
            program: bin.join("vgi-rpc-conformance").display().to_string(),
            args: vec!["--describe".into()],
            tls_and_http2: false,
        });
    }
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let runs: Vec<_> = servers
            .iter()
            .flat_map(|server| {
                server
                    .transports()
                    .map(move |transport| (server, transport))
            })
            .map(|(server, transport)| {
                scope.spawn(move || {
                    client_suite::run(server, transport, None, Duration::from_secs(30))
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let runs: usize = servers.iter().map(|s| s.transports().count()).sum();
    assert_eq!(reports.len(), runs);
    // Ours serves all six, the reference the four without TLS and HTTP/2.
    assert_eq!(servers[0].transports().count(), 6);
    for report in &reports {
        let failed = failures(report);
        assert!(
            failed.is_empty(),
            "{} failed {} tests:\n{}",
            report.label(),
            failed.len(),
            failed.join("\n")
        );
        assert_eq!(
            report.passed(),
            client_suite::test_names().len() - report.skipped()
        );
    }
    let divergences = client_suite::divergences(&reports);
    assert!(
        divergences.is_empty(),
        "servers or transports disagree: {divergences:#?}"
    );
}

#[test]
fn a_hung_worker_fails_its_test_instead_of_hanging_the_suite() {
    let server = Server {
        name: "silent".into(),
        program: "sleep".into(),
        args: vec!["60".into()],
        tls_and_http2: false,
    };
    let report = client_suite::run(
        &server,
        TransportKind::Pipe,
        Some("scalar_echo.echo_int"),
        Duration::from_millis(300),
    );
    assert_eq!(report.outcomes.len(), 1);
    match &report.outcomes[0].verdict {
        Verdict::Failed(message) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected a timeout failure, got {other:?}"),
    }
}

#[test]
fn a_worker_that_never_listens_fails_every_test_with_the_reason() {
    // `true` exits at once without announcing a socket or a port.
    let server = Server {
        name: "mute".into(),
        program: "true".into(),
        args: Vec::new(),
        tls_and_http2: false,
    };
    for transport in [TransportKind::Unix, TransportKind::Http] {
        let report = client_suite::run(
            &server,
            transport,
            Some("scalar_echo"),
            Duration::from_secs(5),
        );
        assert!(!report.outcomes.is_empty());
        for outcome in &report.outcomes {
            match &outcome.verdict {
                Verdict::Failed(message) => {
                    assert!(message.contains("did not start"), "{message}");
                }
                other => panic!("{}: expected a failure, got {other:?}", outcome.test),
            }
        }
    }
}
