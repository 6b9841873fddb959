//! A real browser: headless Chromium, driven through chromedriver (WebDriver), opens a
//! paymentUrl from the sandbox (Novasend's, then HUB2's redirection page), clicks Accept, and
//! the payin reaches SUCCEEDED over gRPC.
//! `./scripts/test` installs Debian's chromium and chromium-driver when they are missing.

mod common;

use common::*;
use payments_gateway::proto::{self as pb, StreamPayinUpdatesRequest};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a4a4-4a4a4a4a4a4a";

struct ChromeDriver {
    child: Child,
    base: String,
    http: reqwest::Client,
    profile: std::path::PathBuf,
}

impl ChromeDriver {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed: run ./scripts/test, which installs chromium-driver");
        let driver = ChromeDriver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile: std::env::temp_dir().join(format!("pgw-chromium-{port}")),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && response
                    .json::<Value>()
                    .await
                    .is_ok_and(|s| s["value"]["ready"] == true)
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        assert!(
            response["value"].get("error").is_none(),
            "webdriver error: {response}"
        );
        response["value"].clone()
    }

    async fn new_session(&self) -> String {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", self.profile.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        }}});
        let session = self
            .call(reqwest::Method::POST, "/session", Some(capabilities))
            .await;
        session["sessionId"].as_str().unwrap().to_owned()
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_on_accept_in_a_real_browser_makes_the_payin_succeed() {
    let redis = RedisServer::start();
    // The payer has a minute to answer: starting a browser takes a while.
    let sandbox = payments_gateway::sandbox::SandboxConfig {
        expiry: Duration::from_secs(60),
        ..quick_sandbox()
    };
    let app = spawn_with_sandbox(&redis, sandbox).await;
    let mut client = app.client().await;
    let payin = client
        .create_payin(pb::CreatePayinRequest {
            msisdn: "+2250700000042".into(),
            ..create_request("browser-1", "key-browser-1")
        })
        .await
        .unwrap()
        .into_inner();
    let stream = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "browser-1".into(),
        })
        .await
        .unwrap()
        .into_inner();

    let driver = ChromeDriver::start().await;
    let session = driver.new_session().await;
    let at = |path: &str| format!("/session/{session}{path}");
    driver
        .call(
            reqwest::Method::POST,
            &at("/url"),
            Some(json!({ "url": payin.payment_url })),
        )
        .await;
    let title = driver.call(reqwest::Method::GET, &at("/title"), None).await;
    assert!(
        title.as_str().unwrap().contains("confirm your payment"),
        "{title}"
    );
    click(&driver, &session, "#accept").await;

    assert_eq!(last_status(stream).await, Some(pb::PayinStatus::Succeeded));

    driver
        .call(reqwest::Method::POST, &at("/refresh"), Some(json!({})))
        .await;
    let page = driver
        .call(reqwest::Method::GET, &at("/source"), None)
        .await;
    assert!(
        page.as_str().unwrap().contains("Payment completed"),
        "the page shows the outcome"
    );
    if let Ok(path) = std::env::var("BROWSER_SCREENSHOT") {
        use base64::Engine;
        let png = driver
            .call(reqwest::Method::GET, &at("/screenshot"), None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    // HUB2 (simulated by the same sandbox): a redirection leads to its payer page.
    let hub2 = client
        .create_payin(pb::CreatePayinRequest {
            msisdn: "+2250700000042".into(),
            provider: pb::Provider::Hub2 as i32,
            operator: "wave".into(),
            ..create_request("browser-2", "key-browser-2")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(hub2.payment_url.contains("/hub2/pay/"), "{hub2:?}");
    let stream = client
        .stream_payin_updates(StreamPayinUpdatesRequest {
            reference: "browser-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    driver
        .call(
            reqwest::Method::POST,
            &at("/url"),
            Some(json!({ "url": hub2.payment_url })),
        )
        .await;
    click(&driver, &session, "#accept").await;
    assert_eq!(last_status(stream).await, Some(pb::PayinStatus::Succeeded));
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            None,
        )
        .await;
}

/// Finds the element `selector` on the current page and clicks it.
async fn click(driver: &ChromeDriver, session: &str, selector: &str) {
    let at = |path: &str| format!("/session/{session}{path}");
    let button = driver
        .call(
            reqwest::Method::POST,
            &at("/element"),
            Some(json!({ "using": "css selector", "value": selector })),
        )
        .await;
    // The W3C key, or the first (only) entry for drivers that use another.
    let button = button
        .get(ELEMENT)
        .or_else(|| button.as_object().and_then(|o| o.values().next()))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no element id in {button}"))
        .to_owned();
    driver
        .call(
            reqwest::Method::POST,
            &at(&format!("/element/{button}/click")),
            Some(json!({})),
        )
        .await;
}

/// The status of a stream's last message, once it ends.
async fn last_status(mut stream: tonic::Streaming<pb::PayinUpdate>) -> Option<pb::PayinStatus> {
    let mut last = None;
    while let Some(update) = tokio::time::timeout(Duration::from_secs(15), stream.message())
        .await
        .expect("updates arrive")
        .unwrap()
    {
        last = Some(update.payin.unwrap().status());
    }
    last
}
