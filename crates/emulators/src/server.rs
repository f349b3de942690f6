//! The loopback HTTP/1.1 server under every emulator: its own runtime on its own thread, one
//! task per connection, and a way for a handler to drop its connection without answering.
//!
//! It owns sockets and threads only; it never looks at what a request means.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::response::Response;
// The HTTP engine is the one the Cloud Identity client already brings (axum's `http1` and
// `tokio` features turn on its server side); the client crate re-exports it.
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// A request as the server receives it.
pub(crate) type Request = hyper::Request<hyper::body::Incoming>;

/// Lets a handler close the connection its request arrived on, so the client sees the
/// connection fail instead of a response.
#[derive(Clone)]
pub(crate) struct ConnectionKiller(Arc<Notify>);

impl ConnectionKiller {
    /// Closes the connection. The handler's own future is dropped with the connection, so this
    /// never returns.
    pub(crate) async fn drop_connection(&self) -> Response {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// A running server; dropping it stops accepting, closes every connection and joins the thread.
pub(crate) struct Server {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves `handler` on a background thread.
    /// Returns once the socket is listening.
    pub(crate) fn start<H, F>(port: u16, thread_name: &str, handler: H) -> io::Result<Server>
    where
        H: Fn(Request, ConnectionKiller) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{thread_name}-worker"))
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || runtime.block_on(accept_loop(listener, stopped, handler)))?;
        Ok(Server { address, shutdown, thread: Some(thread) })
    }

    /// The address the server listens on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The receiver lives as long as the accept loop; a send error means it already ended.
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            // Leaving the thread's runtime cancels every connection task.
            let _ = thread.join();
        }
    }
}

async fn accept_loop<H, F>(listener: TcpListener, mut stopped: watch::Receiver<bool>, handler: H)
where
    H: Fn(Request, ConnectionKiller) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, handler.clone()));
                }
                // Out of file descriptors and the like: wait rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve_connection<H, F>(stream: TcpStream, handler: H)
where
    H: Fn(Request, ConnectionKiller) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    // Small JSON answers: don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let killer = ConnectionKiller(Arc::clone(&kill));
    let service = hyper::service::service_fn(move |request: Request| {
        let answer = handler(request, killer.clone());
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // A connection error (the client went away, a malformed request) just ends the task.
        _ = connection => {}
        // Dropping the connection closes the socket without writing anything.
        _ = kill.notified() => {}
    }
}

/// Whether a request carries `Authorization: Bearer <expected>`.
pub(crate) fn has_bearer(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| token == expected)
}

/// An `application/x-www-form-urlencoded` body (token endpoints take their grants as forms).
pub(crate) fn url_form(body: &[u8]) -> std::collections::HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let Ok(uri) = format!("/?{text}").parse::<axum::http::Uri>() else {
        return std::collections::HashMap::new();
    };
    axum::extract::Query::try_from_uri(&uri).map(|axum::extract::Query(q)| q).unwrap_or_default()
}
