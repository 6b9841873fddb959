//! Each mode of the fault proxy, against an echo server on a real socket.

use crate::common::fault_proxy::{FaultProxy, ProxyMode};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends back whatever it receives.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    address
}

/// What comes back within `wait`: the bytes, or the error, or nothing at all.
async fn exchange(stream: &mut TcpStream, wait: Duration) -> Result<Option<Vec<u8>>, ErrorKind> {
    if let Err(e) = stream.write_all(b"ping").await {
        return Err(e.kind());
    }
    let mut buffer = [0u8; 4];
    match tokio::time::timeout(wait, stream.read_exact(&mut buffer)).await {
        Err(_) => Ok(None),
        Ok(Ok(_)) => Ok(Some(buffer.to_vec())),
        Ok(Err(e)) => Err(e.kind()),
    }
}

async fn connected(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.address).await.unwrap()
}

const QUICK: Duration = Duration::from_millis(500);

#[tokio::test]
async fn pass_and_latency_forward_both_ways() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut stream = connected(&proxy).await;
    assert_eq!(
        exchange(&mut stream, QUICK).await,
        Ok(Some(b"ping".to_vec()))
    );

    proxy.set_mode(ProxyMode::Latency(Duration::from_millis(300)));
    let started = Instant::now();
    let answer = exchange(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(answer, Ok(Some(b"ping".to_vec())));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn reset_cuts_open_and_new_connections_with_a_rst() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut open = connected(&proxy).await;
    assert!(exchange(&mut open, QUICK).await.is_ok());

    proxy.set_mode(ProxyMode::Reset);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buffer = [0u8; 4];
    let cut = open.read(&mut buffer).await.map_err(|e| e.kind());
    assert_eq!(cut, Err(ErrorKind::ConnectionReset));
    let mut new = connected(&proxy).await;
    let refused = exchange(&mut new, QUICK).await;
    assert!(
        matches!(
            refused,
            Err(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
        ),
        "{refused:?}"
    );

    proxy.set_mode(ProxyMode::Pass);
    let mut again = connected(&proxy).await;
    assert_eq!(
        exchange(&mut again, QUICK).await,
        Ok(Some(b"ping".to_vec()))
    );
}

#[tokio::test]
async fn blackhole_swallows_new_connections_only() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut open = connected(&proxy).await;
    assert!(exchange(&mut open, QUICK).await.is_ok());

    proxy.set_mode(ProxyMode::Blackhole);
    let mut new = connected(&proxy).await;
    assert_eq!(exchange(&mut new, QUICK).await, Ok(None));
    assert_eq!(exchange(&mut open, QUICK).await, Ok(Some(b"ping".to_vec())));
}

#[tokio::test]
async fn half_open_silences_connections_for_good() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let mut open = connected(&proxy).await;
    assert!(exchange(&mut open, QUICK).await.is_ok());

    proxy.set_mode(ProxyMode::HalfOpen);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(exchange(&mut open, QUICK).await, Ok(None));
    let mut during = connected(&proxy).await;
    assert_eq!(exchange(&mut during, QUICK).await, Ok(None));

    // Healed: new connections work, the silent ones stay silent.
    proxy.set_mode(ProxyMode::Pass);
    assert_eq!(exchange(&mut open, QUICK).await, Ok(None));
    let mut after = connected(&proxy).await;
    assert_eq!(
        exchange(&mut after, QUICK).await,
        Ok(Some(b"ping".to_vec()))
    );
}

#[tokio::test]
async fn dropping_the_proxy_stops_it() {
    let proxy = FaultProxy::start(echo_server().await).await;
    let address = proxy.address;
    let mut open = connected(&proxy).await;
    assert!(exchange(&mut open, QUICK).await.is_ok());
    drop(proxy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buffer = [0u8; 4];
    let ended = tokio::time::timeout(QUICK, open.read(&mut buffer)).await;
    assert!(
        matches!(ended, Ok(Ok(0)) | Ok(Err(_))),
        "the open connection ends: {ended:?}"
    );
    assert!(TcpStream::connect(address).await.is_err());
}
