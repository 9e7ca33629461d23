//! The metrics endpoint's HTTP: just enough HTTP/1.x for a Prometheus
//! scraper, curl or a browser. One request per connection
//! (`Connection: close`); `GET /metrics` (any query string, as
//! ZooKeeper's servlet ignores all but `name[]`) answers 200 with the
//! Prometheus text, `HEAD` the same headers, any other path 404, any
//! other method 405. A client gets `READ_DEADLINE` to send its
//! request head, at most [`MAX_HEAD`] bytes of it.
//!
//! Hand-written rather than a server crate: the whole surface is one
//! resource, and this keeps the binary's dependencies to the runtime it
//! already has.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{metrics, Sources, READ_DEADLINE};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8192;

/// A parsed request line's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head`: a HEAD request, no body).
    Metrics {
        /// HEAD rather than GET.
        head: bool,
    },
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not an HTTP request line.
    BadRequest,
}

/// Routes a request head (everything up to the blank line).
pub fn route(head: &[u8]) -> Route {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    if path == "/metrics" {
        Route::Metrics { head }
    } else {
        Route::NotFound
    }
}

/// Accepts metrics connections until `stop` fires.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    sources: Sources,
    stop: Arc<tokio::sync::Notify>,
) {
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            acc = listener.accept() => match acc {
                Ok((sock, _)) => {
                    let sources = sources.clone();
                    tokio::spawn(async move { one(sock, &sources).await });
                }
                Err(e) => {
                    log::warn!("metrics port accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Reads the request head: `None` if the client is too slow, too long or
/// gone.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let deadline = tokio::time::Instant::now() + READ_DEADLINE;
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        if buf.len() >= MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn one(mut sock: tokio::net::TcpStream, sources: &Sources) {
    let Some(head) = read_head(&mut sock).await else {
        return;
    };
    let (status, content_type, body, send_body) = match route(&head) {
        Route::Metrics { head } => (
            "200 OK",
            metrics::CONTENT_TYPE,
            metrics::render(&sources.view()),
            !head,
        ),
        Route::NotFound => ("404 Not Found", "text/plain", "Not Found\n".into(), true),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "Method Not Allowed\n".into(),
            true,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain",
            "Bad Request\n".into(),
            true,
        ),
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if send_body {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = sock.write_all(&response).await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"ruok"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
    }
}
