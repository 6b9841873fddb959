//! The real binary: configuration errors, logs free of secrets, and SIGTERM.

mod common;

use common::certs::{certificate_authority, leaf};
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_payments-gateway");

#[test]
fn a_bad_configuration_gives_one_line_per_bad_variable() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("PAYMENTS_POLL_INTERVAL", "1s")
        .env("PAYMENTS_LOG_FORMAT", "xml")
        .env("PAYMENTS_UPSTREAM_TIMEOUT", "soon")
        .env("NOVASEND_BASE_URL", "https://novasend.test")
        .env("NOVASEND_API_KEY", "super-secret-key-value")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (line, variable) in lines.iter().zip([
        "PAYMENTS_POLL_INTERVAL",
        "PAYMENTS_UPSTREAM_TIMEOUT",
        "PAYMENTS_LOG_FORMAT",
        "NOVASEND_API_CLIENT",
    ]) {
        assert!(line.contains(variable), "{line}");
    }
    assert!(!stderr.contains("super-secret-key-value"));
}

#[test]
fn routes_must_be_well_formed_and_lead_to_an_enabled_provider() {
    // With a real Novasend and no HUB2_BASE_URL, HUB2 is off (without any provider URL the
    // sandbox would simulate it).
    let real_novasend = [
        ("NOVASEND_BASE_URL", "https://novasend.test"),
        ("NOVASEND_API_KEY", "key"),
        ("NOVASEND_API_CLIENT", "client"),
    ];
    for (routes, says, env) in [
        ("CI=hub2", "is not COUNTRY:provider", &[][..]),
        ("CI:novasend", "no `*:provider`", &[]),
        (
            "CI:hub2,*:novasend",
            "`hub2`, which is not enabled",
            &real_novasend,
        ),
    ] {
        let output = Command::new(BINARY)
            .env_clear()
            .env("PAYMENTS_ROUTES", routes)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{routes}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("PAYMENTS_ROUTES") && stderr.contains(says),
            "{stderr}"
        );
    }
}

fn wait_for_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_secret_nor_phone_number_and_sigterm_stops_the_service() {
    let redis = RedisServer::start();
    let novasend = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(201).set_body_json(payin_2026(
                "order-log",
                "processing",
                "none",
            )),
        )
        .mount(&novasend)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(422).set_body_json(serde_json::json!({
                "message": "number +2250700000042 is barred", "statusCode": 422
            })),
        )
        .mount(&novasend)
        .await;
    let grpc_port = free_port();
    let mut child = Command::new(BINARY)
        .arg("serve")
        .env_clear()
        .env("PAYMENTS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("PAYMENTS_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("PAYMENTS_REDIS_URL", redis.url())
        .env("NOVASEND_BASE_URL", novasend.uri())
        .env("NOVASEND_API_KEY", API_KEY)
        .env("NOVASEND_API_CLIENT", API_CLIENT)
        .env("PAYMENTS_SHUTDOWN_GRACE", "2s")
        .env("PAYMENTS_LOG_FORMAT", "json")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the logs as they come: a full pipe would block the service.
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).unwrap();
        logs
    });

    let endpoint = format!("http://127.0.0.1:{grpc_port}");
    let mut client = None;
    for _ in 0..250 {
        if let Ok(c) =
            payments_gateway::proto::payments_service_client::PaymentsServiceClient::connect(
                endpoint.clone(),
            )
            .await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = client.expect("the binary listens");
    client
        .create_payin(create_request("order-log", "key-log"))
        .await
        .unwrap();
    let invalid = payments_gateway::proto::CreatePayinRequest {
        country: "FR".into(),
        ..create_request("order-bad", "key-bad")
    };
    client.create_payin(invalid).await.unwrap_err();
    let refused = client
        .get_payin(payments_gateway::proto::GetPayinRequest {
            reference: "order-log".into(),
            refresh: true,
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("**********0042"),
        "{}",
        refused.message()
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_for_exit(&mut child, Duration::from_secs(5))
        .expect("SIGTERM stops the service within the grace period");
    assert!(status.success(), "{status:?}");

    let logs = log_reader.join().unwrap();
    assert!(logs.contains("shutting down"), "{logs}");
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON line: {line}"));
    }
    for secret in [
        "+2250700000042",
        "2250700000042",
        API_KEY,
        API_CLIENT,
        "Basic ",
    ] {
        assert!(!logs.contains(secret), "logs leak {secret:?}");
    }
    assert!(logs.contains("0042"), "phone numbers appear masked");
}

/// The README's quick start, run as a newcomer would: `serve` with no Novasend (the sandbox
/// starts in process), then the client commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_works_from_the_command_line() {
    let grpc_port = free_port();
    let mut service = Command::new(BINARY)
        .env_clear()
        .env("PAYMENTS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("PAYMENTS_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("SANDBOX_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("SANDBOX_STEP_DELAY", "100ms")
        .env("PAYMENTS_SHUTDOWN_GRACE", "1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner is read line by line; the rest of stdout keeps being drained.
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stdout = service.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut banner = String::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(20)) {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("never answer") {
            break;
        }
    }
    assert!(
        banner.contains("built-in Novasend sandbox at http://127.0.0.1:")
            && banner.contains("simulates HUB2 at http://127.0.0.1:")
            && banner.contains("client confirm order-2 --code 123456"),
        "{banner}"
    );
    assert!(banner.contains("client create"), "{banner}");

    let addr = format!("http://127.0.0.1:{grpc_port}");
    let client = |args: &[&str]| {
        let output = Command::new(BINARY)
            .arg("client")
            .args(["--addr", &addr])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let mut created = (false, String::new(), String::new());
    for _ in 0..100 {
        created = client(&[
            "create",
            "--reference",
            "quick-1",
            "--amount",
            "300",
            "--msisdn",
            "+2250700000000",
            "--name",
            "Awa Kone",
            "--country",
            "CI",
        ]);
        if created.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, out, err) = created;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("payin quick-1  AWAITING_CONFIRMATION"),
        "{out}"
    );
    assert!(out.contains("/pay/"), "the payment page is printed: {out}");
    assert!(
        out.contains("**********0000") && !out.contains("+2250700000000"),
        "{out}"
    );

    let (ok, watched, err) = client(&["watch", "quick-1"]);
    assert!(ok, "{err}");
    assert!(
        watched.contains("SNAPSHOT")
            && watched.contains("SUCCEEDED")
            && watched.contains("final status reached"),
        "{watched}"
    );

    let (ok, refunded, err) = client(&["refund", "quick-1", "--reason", "customer asked"]);
    assert!(ok, "{err}");
    assert!(
        refunded.contains("refund rf_") && refunded.contains("(full)"),
        "{refunded}"
    );

    // The README's HUB2 payin: no account, an OTP from the sandbox, confirmed.
    let (ok, created, err) = client(&[
        "create",
        "--reference",
        "quick-2",
        "--amount",
        "300",
        "--msisdn",
        "+2250700000042",
        "--name",
        "Awa Kone",
        "--country",
        "CI",
        "--provider",
        "hub2",
        "--operator",
        "orange",
    ]);
    assert!(ok, "{created}{err}");
    assert!(
        created.contains("payin quick-2  AWAITING_CONFIRMATION")
            && created.contains("hub2             pi_")
            && created.contains("next action      otp:")
            && created.contains("client confirm quick-2 --code"),
        "{created}"
    );
    let (ok, confirmed, err) = client(&["confirm", "quick-2", "--code", "123456"]);
    assert!(ok, "{err}");
    assert!(
        confirmed.contains("payin quick-2  PROCESSING"),
        "{confirmed}"
    );
    let (ok, watched, err) = client(&["watch", "quick-2"]);
    assert!(ok, "{err}");
    assert!(
        watched.contains("SUCCEEDED") && watched.contains("final status reached"),
        "{watched}"
    );

    let (ok, _, err) = client(&["--lang", "fr", "get", "nope!"]);
    assert!(!ok);
    assert!(
        err.contains("InvalidArgument") && err.contains("reference"),
        "{err}"
    );

    let pid = service.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(wait_for_exit(&mut service, Duration::from_secs(5)).is_some_and(|s| s.success()));
}

/// `rediss://` (contract §10): the service reaches Redis over TLS and checks its certificate.
/// Trusted through SSL_CERT_FILE (redis-rs reads the platform's roots, which honour it),
/// readiness, which writes, turns ready; with a CA it does not know, it never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_url_reaches_redis_over_tls_and_checks_its_certificate() {
    payments_gateway::startup::install_crypto_provider();
    let dir = common::replica::RunDir::new("redis-tls");
    let (ca, ca_pem) = certificate_authority();
    let (cert, key) = leaf(&ca, "localhost");
    let (_, other_ca_pem) = certificate_authority();
    let write = |name: &str, text: &str| {
        let path = dir.path.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca_file, cert_file, key_file) = (
        write("ca.pem", &ca_pem),
        write("redis.pem", &cert),
        write("redis.key", &key),
    );
    let other_ca_file = write("other-ca.pem", &other_ca_pem);
    let tls_port = free_port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &tls_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &cert_file,
            "--tls-key-file",
            &key_file,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it)");
    let ready_with = |trusted: &str| {
        let http_port = free_port();
        let child = Command::new(BINARY)
            .arg("serve")
            .env_clear()
            .env(
                "PAYMENTS_REDIS_URL",
                format!("rediss://localhost:{tls_port}"),
            )
            .env("SSL_CERT_FILE", trusted)
            .env("PAYMENTS_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("PAYMENTS_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("SANDBOX_ADDR", format!("127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (child, format!("http://127.0.0.1:{http_port}/readyz"))
    };
    let ready = |url: String| async move {
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            let answer = reqwest::get(&url).await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };

    let (mut trusting, url) = ready_with(&ca_file);
    let trusted = ready(url).await;
    let (mut distrusting, url) = ready_with(&other_ca_file);
    let distrusted = ready(url).await;
    for child in [&mut trusting, &mut distrusting, &mut redis] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(trusted, "never ready over TLS with the CA trusted");
    assert!(
        !distrusted,
        "ready over TLS with a certificate no trusted CA signed"
    );
}
