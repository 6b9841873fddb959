//! Nagle's algorithm is off on every connection the service accepts: a response written in
//! several flushes must not wait for the peer's delayed ACK (it cost 40 ms a call).

use axum::serve::Listener;
use futures_util::StreamExt;
use payments_gateway::startup::{grpc_incoming, http_incoming};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn accepted_grpc_and_http_sockets_have_tcp_nodelay() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut grpc = grpc_incoming(listener);
    let _caller = TcpStream::connect(address).await.unwrap();
    let accepted = grpc.next().await.unwrap().unwrap();
    assert!(
        accepted.nodelay().unwrap(),
        "gRPC socket without TCP_NODELAY"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut http = http_incoming(listener);
    let _caller = TcpStream::connect(address).await.unwrap();
    let (accepted, _) = http.accept().await;
    assert!(
        accepted.nodelay().unwrap(),
        "HTTP socket without TCP_NODELAY"
    );
}
