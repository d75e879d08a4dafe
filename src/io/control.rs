//! The control socket: binding it, the daemon's server (tokio), and the client's call (blocking).
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
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The socket both binaries use unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/tcpreset/tcpresetd.sock";

/// Serves requests on `listener` and expires rules on time until `shutdown` completes; then
/// each connection finishes the request it is handling (idle ones close), and the captures stop.
pub async fn serve(
    listener: UnixListener,
    daemon: Arc<Daemon>,
    shutdown: impl Future<Output = ()>,
) {
    let expiry = tokio::spawn(expire_on_time(Arc::clone(&daemon)));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(handle_connection(stream, Arc::clone(&daemon), stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "accept on control socket failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    while connections.join_next().await.is_some() {}
    expiry.abort();
    tokio::task::spawn_blocking(move || daemon.stop_captures())
        .await
        .ok();
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

async fn handle_connection(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    mut stop: watch::Receiver<bool>,
) {
    let allowed = match stream.peer_cred() {
        Ok(cred) => daemon.authorize(cred.uid(), cred.gid(), cred.pid()),
        Err(e) => Err(format!(
            "cannot read the peer's credentials (SO_PEERCRED: {e})"
        )),
    };
    let (read, mut write) = stream.into_split();
    let mut lines = AsyncBufReader::new(read.take(proto::MAX_REQUEST_LEN as u64 * 64)).lines();
    if let Err(message) = allowed {
        // Read the request first, so the refusal is the answer to it rather than a reset.
        let _ = lines.next_line().await;
        let refusal = Response::Error {
            kind: proto::ErrorKind::Unauthorized,
            message,
        };
        let mut text = serde_json::to_string(&refusal).expect("responses serialize");
        text.push('\n');
        let _ = write.write_all(text.as_bytes()).await;
        return;
    }
    loop {
        let next = tokio::select! {
            biased;
            next = lines.next_line() => next,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let line = match next {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "control connection read failed");
                return;
            }
        };
        let response = if line.len() > proto::MAX_REQUEST_LEN {
            Response::Error {
                kind: proto::ErrorKind::BadRequest,
                message: format!("request longer than {} bytes", proto::MAX_REQUEST_LEN),
            }
        } else {
            match proto::parse_request(&line) {
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
            }
        };
        if let Response::Error { message, .. } = &response {
            tracing::warn!(%message, "request refused");
        }
        let mut text = serde_json::to_string(&response).expect("responses serialize");
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
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
    (&stream).write_all(line.as_bytes()).map_err(io)?;
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
