//! The one HTTP client of the playbooks (I/O edge): JSON over `http://` or `https://` through
//! `ureq` with rustls (the Mozilla roots, or the certificates of a CA file), for webhooks and the
//! OpenSearch backend. Errors name the failure in one line (timeout, refused, TLS, DNS).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Bodies larger than this are refused rather than read.
const MAX_REPLY_BYTES: u64 = 256 * 1024 * 1024;

/// A client with one timeout (connect, send and read together) and one set of trusted roots.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    timeout: Duration,
}

/// An answer of any status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub reason: String,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `HTTP 200 OK`.
    pub fn status_line(&self) -> String {
        format!("HTTP {} {}", self.status, self.reason)
            .trim_end()
            .to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("cannot use the CA file {path}: {reason}; give a PEM file of the certificate(s) that signed the server's")]
    CaFile { path: String, reason: String },
    #[error("no answer within {0} s (timeout); raise `timeout` or check that the server is up")]
    Timeout(u64),
    #[error(
        "{0} refused the connection; check the URL's host and port and that the server listens"
    )]
    Refused(String),
    #[error("cannot resolve the host of {0}; check the URL")]
    HostNotFound(String),
    #[error("TLS with {url} failed: {reason}; check `ca_file` and the server's certificate")]
    Tls { url: String, reason: String },
    #[error("request to {url} failed: {reason}")]
    Other { url: String, reason: String },
}

pub enum Method {
    Get,
    Post,
    Put,
}

impl HttpClient {
    /// A client trusting the Mozilla roots, or only the certificates in `ca_file`.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<HttpClient, HttpError> {
        let mut tls = TlsConfig::builder();
        if let Some(path) = ca_file {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(read_ca_file(path)?)));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build();
        Ok(HttpClient {
            agent: config.into(),
            timeout,
        })
    }

    /// Sends one request with a JSON (or NDJSON, by its headers) body and reads the answer.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, HttpError> {
        let result = match method {
            Method::Get => {
                let mut req = self.agent.get(url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            Method::Post | Method::Put => {
                let mut req = match method {
                    Method::Put => self.agent.put(url),
                    _ => self.agent.post(url),
                };
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    req = req.header("Content-Type", "application/json");
                }
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(body.unwrap_or(""))
            }
        };
        let mut response = result.map_err(|e| self.classify(url, e))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_string()
            .map_err(|e| self.classify(url, e))?;
        Ok(Reply {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            body,
        })
    }

    fn classify(&self, url: &str, e: ureq::Error) -> HttpError {
        let url = redact(url);
        match e {
            ureq::Error::Timeout(_) => HttpError::Timeout(self.timeout.as_secs().max(1)),
            ureq::Error::HostNotFound => HttpError::HostNotFound(url),
            ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
                HttpError::Tls {
                    url,
                    reason: io.get_ref().map(|e| e.to_string()).unwrap_or_default(),
                }
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                HttpError::Refused(url)
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                HttpError::Timeout(self.timeout.as_secs().max(1))
            }
            ureq::Error::Rustls(tls) => HttpError::Tls {
                url,
                reason: tls.to_string(),
            },
            other => HttpError::Other {
                url,
                reason: other.to_string(),
            },
        }
    }
}

/// The URL without user information, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
            Some((_, host)) => format!(
                "{scheme}://{host}{}",
                &rest[rest.find('/').unwrap_or(rest.len())..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, HttpError> {
    let err = |reason: String| HttpError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| err(e.to_string()))? {
            PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    if certs.is_empty() {
        return Err(err("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_refused_connection_and_a_silent_server_are_one_line_each() {
        let client = HttpClient::new(Duration::from_millis(300), None).unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = client
            .send(Method::Get, &format!("http://127.0.0.1:{port}/"), &[], None)
            .unwrap_err();
        assert!(matches!(e, HttpError::Refused(_)), "{e}");

        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://u:secret@{}/x", silent.local_addr().unwrap());
        let e = client.send(Method::Get, &url, &[], None).unwrap_err();
        assert!(matches!(e, HttpError::Timeout(_)), "{e}");
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn an_answer_of_any_status_is_read_whole() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"a\":404}")
                .unwrap();
            req
        });
        let client = HttpClient::new(Duration::from_secs(5), None).unwrap();
        let reply = client
            .send(
                Method::Post,
                &format!("http://{addr}/i/_search"),
                &[("X-A", "b")],
                Some("{}"),
            )
            .unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (404, "{\"a\":404}"));
        assert_eq!(reply.status_line(), "HTTP 404 Not Found");
        let req = t.join().unwrap();
        assert!(req.starts_with("POST /i/_search HTTP/1.1"), "{req}");
        assert!(
            req.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{req}"
        );
        assert!(req.to_ascii_lowercase().contains("x-a: b"), "{req}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = HttpClient::new(Duration::from_secs(1), Some(&path)).unwrap_err();
        assert!(
            e.to_string().contains("ca.pem") && e.to_string().contains("no PEM certificate"),
            "{e}"
        );
    }
}
