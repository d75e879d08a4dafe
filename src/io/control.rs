//! The control socket: binding it, the daemon's server (tokio), and the client's call (blocking).
mod limits;

use super::auth;
use super::daemon::Daemon;
use crate::proto::{self, Envelope, Request, Response};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use limits::ServeLimits;
use limits::{AcceptBackoff, Line};

/// The socket both binaries use unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/tcpreset/tcpresetd.sock";

/// [`serve_with`] with the default [`ServeLimits`].
pub async fn serve(
    listener: UnixListener,
    daemon: Arc<Daemon>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, daemon, shutdown, ServeLimits::default()).await
}

/// Serves requests on `listener` and expires rules on time until `shutdown` completes; then
/// each connection finishes the request it is handling (idle ones close) within
/// `limits.drain`, the rest are closed, and the captures stop.
pub async fn serve_with(
    listener: UnixListener,
    daemon: Arc<Daemon>,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
) {
    let expiry = tokio::spawn(expire_on_time(Arc::clone(&daemon)));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut at_cap = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Some(failures) = backoff.succeeded() {
                        tracing::info!(failures, "control socket accepts connections again");
                    }
                    if connections.len() >= limits.max_connections {
                        if !at_cap {
                            tracing::warn!(
                                max = limits.max_connections,
                                "control socket: {} connections are open, the most served at once; further ones are answered 'busy' until some close",
                                limits.max_connections
                            );
                            at_cap = true;
                        }
                        refuse_busy(&stream, limits.max_connections);
                        continue;
                    }
                    at_cap = false;
                    connections.spawn(handle_connection(stream, Arc::clone(&daemon), stop.clone(), limits));
                }
                Err(e) => {
                    let (wait, first) = backoff.failed();
                    if first {
                        tracing::error!(
                            error = %e,
                            "accept on the control socket fails; retrying with a back-off of up to 1 s and logging once until it works again (EMFILE: raise LimitNOFILE or find the idle clients)"
                        );
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown: closing the control connections still busy after {:?}",
            limits.drain
        );
        connections.shutdown().await;
    }
    expiry.abort();
    tokio::task::spawn_blocking(move || {
        daemon.stop_captures();
        // The journal's changes into one snapshot, so the next start reads one file.
        daemon.checkpoint();
    })
    .await
    .ok();
}

/// The answer of a connection over the cap, written without waiting (the socket's buffer is
/// empty), before it is closed.
fn refuse_busy(stream: &UnixStream, max: usize) {
    let busy = Response::Error {
        kind: proto::ErrorKind::Unavailable,
        message: format!(
            "tcpresetd is serving {max} control connections, the most it serves at once; try again in a moment, and look for clients that keep connections open"
        ),
    };
    let _ = stream.try_write(answer_line(&busy).as_bytes());
}

fn answer_line(response: &Response) -> String {
    let mut text = serde_json::to_string(response).expect("responses serialize");
    text.push('\n');
    text
}

async fn expire_on_time(daemon: Arc<Daemon>) {
    loop {
        let wait = match daemon.next_deadline() {
            Some(deadline) => deadline.saturating_since(daemon.now()),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                let d = Arc::clone(&daemon);
                let _ = tokio::task::spawn_blocking(move || d.expire(d.now())).await;
            }
            _ = daemon.changed().notified() => {}
        }
    }
}

/// Refuses a peer not on the allow list before reading anything from it; what it sent (at
/// most one line's limit, for a second) is then read and thrown away, so that its write does
/// not fail before it reads the refusal.
async fn refuse_unauthorized(stream: UnixStream, message: String, limits: ServeLimits) {
    let refusal = Response::Error {
        kind: proto::ErrorKind::Unauthorized,
        message,
    };
    let (read, mut write) = stream.into_split();
    let text = answer_line(&refusal);
    let wrote = tokio::time::timeout(limits.write, write.write_all(text.as_bytes()));
    if !matches!(wrote.await, Ok(Ok(()))) {
        return;
    }
    let _ = write.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut read = read.take(proto::MAX_REQUEST_LEN as u64);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn handle_connection(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    mut stop: watch::Receiver<bool>,
    limits: ServeLimits,
) {
    let allowed = match stream.peer_cred() {
        Ok(cred) => daemon.authorize(cred.uid(), cred.gid(), cred.pid()),
        Err(e) => Err(format!(
            "cannot read the peer's credentials (SO_PEERCRED: {e})"
        )),
    };
    if let Err(message) = allowed {
        return refuse_unauthorized(stream, message, limits).await;
    }
    let (read, mut write) = stream.into_split();
    let mut read = AsyncBufReader::new(read);
    loop {
        let next = tokio::select! {
            biased;
            next = tokio::time::timeout(limits.idle, limits::next_line(&mut read, proto::MAX_REQUEST_LEN)) => next,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let line = match next {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "control connection read failed");
                return;
            }
            Err(_) => {
                tracing::debug!("control connection idle for {:?}: closed", limits.idle);
                return;
            }
        };
        let response = match parse_line(&line) {
            Ok(request) => {
                let d = Arc::clone(&daemon);
                tokio::task::spawn_blocking(move || d.handle(request, d.now()))
                    .await
                    .unwrap_or_else(|e| Response::Error {
                        kind: proto::ErrorKind::Unavailable,
                        message: format!("internal error handling the request: {e}"),
                    })
            }
            Err(message) => Response::Error {
                kind: proto::ErrorKind::BadRequest,
                message,
            },
        };
        if let Response::Error { message, .. } = &response {
            tracing::warn!(%message, "request refused");
        }
        let text = answer_line(&response);
        let wrote = tokio::time::timeout(limits.write, write.write_all(text.as_bytes()));
        if !matches!(wrote.await, Ok(Ok(()))) {
            tracing::debug!("control client does not read its answers: closed");
            return;
        }
    }
}

/// A line as read to the request it holds, or the message of a bad-request answer.
fn parse_line(line: &Line) -> Result<Request, String> {
    let bytes = match line {
        Line::TooLong => {
            return Err(format!(
                "request longer than {} bytes; a request is one line of JSON",
                proto::MAX_REQUEST_LEN
            ))
        }
        Line::Bytes(bytes) => bytes,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "request is not UTF-8 text (invalid byte at offset {}); send one line of JSON",
            e.valid_up_to()
        )
    })?;
    proto::parse_request(text)
}

/// Why the control socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("creating the socket directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setting the mode of {path}")]
    Mode {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("giving {path} to group {group}")]
    Chown {
        path: PathBuf,
        group: String,
        source: nix::Error,
    },
    #[error("another tcpresetd is already serving {0}; stop it first or pass another --socket")]
    InUse(PathBuf),
    #[error("removing the stale socket {path}")]
    RemoveStale {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("binding the control socket {path}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the control socket, replacing a stale one but never a live daemon's; the directory
/// and the socket belong to `group` (mode 0750 and 0660) so its members may connect.
pub fn bind(socket: &Path, group: &str) -> Result<UnixListener, BindError> {
    let gid = auth::group_gid(group);
    if gid.is_none() {
        tracing::warn!("group '{group}' does not exist: only root can use the socket (create it, or set socket_group)");
    }
    let owned = |path: &Path, mode: u32| -> Result<(), BindError> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
            |source| BindError::Mode {
                path: path.to_owned(),
                source,
            },
        )?;
        match gid {
            Some(gid) => {
                nix::unistd::chown(path, None, Some(gid)).map_err(|source| BindError::Chown {
                    path: path.to_owned(),
                    group: group.to_owned(),
                    source,
                })
            }
            None => Ok(()),
        }
    };
    if let Some(dir) = socket.parent().filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir).map_err(|source| BindError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        owned(dir, 0o750)?;
    }
    if socket.exists() {
        if StdUnixStream::connect(socket).is_ok() {
            return Err(BindError::InUse(socket.to_owned()));
        }
        std::fs::remove_file(socket).map_err(|source| BindError::RemoveStale {
            path: socket.to_owned(),
            source,
        })?;
    }
    let listener = UnixListener::bind(socket).map_err(|source| BindError::Bind {
        path: socket.to_owned(),
        source,
    })?;
    owned(socket, 0o660)?;
    Ok(listener)
}

/// Why the client could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tcpresetd is not running (no socket at {0}); start it with 'systemctl start tcpresetd' or 'tcpresetd --socket {0}' as root, or point --socket / TCPRESET_SOCKET at its socket")]
    NotRunning(PathBuf),
    #[error("permission denied on {0}; run tcpreset as root or as a member of the socket's group (see the README, 'Who may register resets')")]
    PermissionDenied(PathBuf),
    #[error("talking to tcpresetd on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tcpresetd on {path} answered something this client does not understand ({detail}); are both from the same release?")]
    BadAnswer { path: PathBuf, detail: String },
}

/// Sends one request and waits for its answer.
pub fn call(path: &Path, request: Request, timeout: Duration) -> Result<Response, ClientError> {
    let io = |source: std::io::Error| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let stream = StdUnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning(path.to_owned())
        }
        std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_owned()),
        _ => io(e),
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(&Envelope {
        v: proto::VERSION,
        request,
    })
    .expect("requests serialize");
    line.push('\n');
    // A daemon that refuses us answers before it reads: its answer is still there to read.
    if let Err(e) = (&stream).write_all(line.as_bytes()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(io(e));
        }
    }
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::BadAnswer {
        path: path.to_owned(),
        detail: if answer.is_empty() {
            "the connection closed without an answer".to_owned()
        } else {
            e.to_string()
        },
    })
}
