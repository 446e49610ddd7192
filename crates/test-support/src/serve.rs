//! A server on a free loopback port of the test process itself, so a test
//! needs no worker binary and no port of its own choosing.

use std::future::Future;

use tokio::net::TcpListener;

/// Binds a free loopback port and runs `serve(listener)` on a runtime and
/// thread of their own for as long as the test process lives; returns the
/// port.
///
/// The runtime is not the test's own, so synchronous tests can call the
/// server and a `#[tokio::test]` ending does not stop it.
///
/// ```
/// use std::io::Read;
///
/// let port = vgirpc_test_support::serve_in_process(|listener| async move {
///     loop {
///         let (stream, _) = listener.accept().await.unwrap();
///         stream.writable().await.unwrap();
///         stream.try_write(b"hello").unwrap();
///     }
/// });
/// let mut reply = String::new();
/// std::net::TcpStream::connect(("127.0.0.1", port))
///     .unwrap()
///     .read_to_string(&mut reply)
///     .unwrap();
/// assert_eq!(reply, "hello");
/// ```
pub fn serve_in_process<F, Fut>(serve: F) -> u16
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    // Two workers: enough for a test's concurrent calls on a machine whose
    // cores the other test binaries share.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || runtime.block_on(serve(listener)));
    port
}
