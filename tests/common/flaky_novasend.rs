//! A Novasend-compatible HTTP server on a real socket that can do what wiremock cannot:
//! process a request and then drop the connection without answering.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostBehavior {
    /// Create the payin and answer.
    Create,
    /// Create the payin, then close the connection without a word.
    CreateThenDrop,
    /// Close the connection without creating anything.
    DropWithoutCreating,
}

#[derive(Debug, Clone)]
pub struct RecordedPost {
    pub idempotency_key: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    payins: HashMap<String, Value>,
    posts: Vec<RecordedPost>,
    gets: usize,
    post_plan: VecDeque<PostBehavior>,
    failing_gets: usize,
}

pub struct FlakyNovasend {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyNovasend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FlakyNovasend { url, state, task }
    }

    /// The next POSTs behave as listed; after that they create and answer.
    pub fn plan_posts(&self, plan: &[PostBehavior]) {
        self.state.lock().unwrap().post_plan.extend(plan);
    }

    /// The next `count` GETs answer 503.
    pub fn fail_gets(&self, count: usize) {
        self.state.lock().unwrap().failing_gets = count;
    }

    pub fn posts(&self) -> Vec<RecordedPost> {
        self.state.lock().unwrap().posts.clone()
    }

    pub fn gets(&self) -> usize {
        self.state.lock().unwrap().gets
    }

    pub fn payins_created(&self) -> usize {
        self.state.lock().unwrap().payins.len()
    }
}

impl Drop for FlakyNovasend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((method, path, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let response = {
        let mut state = state.lock().unwrap();
        route(&mut state, &method, &path, &headers, &body)
    };
    if let Some((status, body)) = response {
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
    // `None`: drop the connection unanswered.
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Option<(&'static str, String)> {
    match (method, path) {
        ("POST", "/v1/payin/sessions") => {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let reference = body["reference"].as_str().unwrap_or_default().to_owned();
            state.posts.push(RecordedPost {
                idempotency_key: headers
                    .get("x-idempotency-key")
                    .cloned()
                    .unwrap_or_default(),
                body: body.clone(),
            });
            let behavior = state.post_plan.pop_front().unwrap_or(PostBehavior::Create);
            if behavior == PostBehavior::DropWithoutCreating {
                return None;
            }
            let payin = state
                .payins
                .entry(reference.clone())
                .or_insert_with(|| super::payin_2026(&reference, "processing", "none"))
                .clone();
            match behavior {
                PostBehavior::CreateThenDrop => None,
                _ => Some(("201 Created", payin.to_string())),
            }
        }
        ("GET", path) if path.starts_with("/v1/payin/") => {
            state.gets += 1;
            if state.failing_gets > 0 {
                state.failing_gets -= 1;
                return Some((
                    "503 Service Unavailable",
                    r#"{"error":"Service Unavailable","statusCode":503,"message":"try later"}"#
                        .into(),
                ));
            }
            let reference = &path["/v1/payin/".len()..];
            match state.payins.get(reference) {
                Some(payin) => Some(("200 OK", payin.to_string())),
                None => Some((
                    "404 Not Found",
                    r#"{"error":"Not Found","statusCode":404,"message":"payin not found"}"#.into(),
                )),
            }
        }
        _ => Some(("404 Not Found", "{}".into())),
    }
}

type Request = (String, String, HashMap<String, String>, Vec<u8>);

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buffer.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, body))
}
