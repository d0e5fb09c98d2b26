//! Loopback ports for tests that need one nobody serves.

/// A loopback port nobody serves, reserved while the socket lives: bound but not listening, so
/// connects to it are refused and no one else can take it.
pub fn unserved_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}
