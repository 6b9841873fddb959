//! A TCP fault proxy on a free loopback port: sits between the service and Redis, or between
//! the service and the provider, and misbehaves on command (latency, reset, blackhole,
//! half-open), so tests see what real networks do to real sockets. Dropping it stops it and
//! every connection it holds.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the proxy gives the target to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a silent (half-open or blackholed) connection is held before it is cut: long
/// enough for any client timeout to fire first, short enough that nothing lingers.
const MAX_SILENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Pass,
    /// Forwards both ways, each chunk delayed this long.
    Latency(Duration),
    /// Cuts every connection, open or new, with a TCP RST.
    Reset,
    /// Accepts new connections, reads and discards what they send, never answers. Open
    /// connections go on forwarding.
    Blackhole,
    /// Every connection, open or new, stays open but nothing is forwarded any more, in
    /// either direction, as when the peer vanished without a FIN. A connection that went
    /// silent stays silent after the mode changes back (its peer is gone for good).
    HalfOpen,
}

pub struct FaultProxy {
    pub address: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(ProxyMode::Pass);
        let accept_task = tokio::spawn(accept_loop(listener, target, watcher));
        FaultProxy {
            address,
            mode,
            accept_task,
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop holds a receiver; connections notice the closed channel and end.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<ProxyMode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = client.set_nodelay(true);
        tokio::spawn(serve_connection(client, target, mode.clone()));
    }
}

async fn serve_connection(
    client: TcpStream,
    target: SocketAddr,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let current = *mode.borrow_and_update();
    match current {
        ProxyMode::Reset => return reset(&client),
        ProxyMode::Blackhole => return blackhole(client, mode).await,
        ProxyMode::HalfOpen => return hold_silent(&client, None, mode).await,
        ProxyMode::Pass | ProxyMode::Latency(_) => {}
    }
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(upstream)) => upstream,
        // The target is down: the client sees what it would see without a proxy.
        _ => return reset(&client),
    };
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    // Each direction watches the mode itself: a bad mode cuts or silences both sockets.
    tokio::join!(
        pump(client_read, upstream_write, mode.clone()),
        pump(upstream_read, client_write, mode),
    );
}

/// Copies one direction until EOF; a bad mode ends it with a RST or makes it go silent.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => Some(read),
            _ = turned_bad(&mut mode) => None,
        };
        let n = match read {
            None => return misbehave(from, to, mode).await,
            Some(Ok(0) | Err(_)) => {
                let _ = to.shutdown().await;
                return;
            }
            Some(Ok(n)) => n,
        };
        let current = *mode.borrow();
        if let ProxyMode::Latency(delay) = current {
            tokio::time::sleep(delay).await;
        }
        if is_bad(*mode.borrow()) {
            return misbehave(from, to, mode).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

async fn misbehave(from: OwnedReadHalf, to: OwnedWriteHalf, mode: watch::Receiver<ProxyMode>) {
    let current = *mode.borrow();
    if current == ProxyMode::HalfOpen {
        hold_silent(from.as_ref(), Some(to.as_ref()), mode).await;
    } else {
        // Reset, or the proxy was dropped.
        reset(from.as_ref());
        reset(to.as_ref());
    }
    // Dropping a write half would send a FIN first; the peer must see the RST alone.
    to.forget();
}

fn is_bad(mode: ProxyMode) -> bool {
    matches!(mode, ProxyMode::Reset | ProxyMode::HalfOpen)
}

/// Waits until the mode becomes Reset or HalfOpen, or the proxy is dropped.
async fn turned_bad(mode: &mut watch::Receiver<ProxyMode>) {
    loop {
        if is_bad(*mode.borrow_and_update()) {
            return;
        }
        if mode.changed().await.is_err() {
            // The proxy is gone: treated as a reset by the caller.
            return;
        }
    }
}

/// SO_LINGER 0: the socket's close sends a RST instead of a FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Holds the sockets open without a byte either way, until a Reset, the proxy's end or
/// MAX_SILENCE, each of which cuts them with a RST.
async fn hold_silent(
    client: &TcpStream,
    upstream: Option<&TcpStream>,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let until_reset = async {
        loop {
            if *mode.borrow_and_update() == ProxyMode::Reset || mode.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_SILENCE, until_reset).await;
    reset(client);
    if let Some(upstream) = upstream {
        reset(upstream);
    }
}

/// Reads and discards until the client gives up, a Reset, the proxy's end or MAX_SILENCE.
async fn blackhole(mut client: TcpStream, mut mode: watch::Receiver<ProxyMode>) {
    let mut buffer = vec![0u8; 16 * 1024];
    let swallow = async {
        loop {
            tokio::select! {
                read = client.read(&mut buffer) => {
                    if matches!(read, Ok(0) | Err(_)) { return; }
                }
                changed = mode.changed() => {
                    if changed.is_err() || *mode.borrow() == ProxyMode::Reset { return; }
                }
            }
        }
    };
    let _ = tokio::time::timeout(MAX_SILENCE, swallow).await;
    reset(&client);
}
