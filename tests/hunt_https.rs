//! HTTPS through the playbooks' one client: a server whose certificate no trusted root signed is
//! refused (webhooks and clusters alike), and the same server is reached once its CA is given
//! as `ca_file`. The CA and the server are made by the `openssl` command, on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tcpreset::playbook::act::action::HttpUrl;
use tcpreset::playbook::io::exec::post_json;
use tcpreset::playbook::io::http::{HttpClient, HttpError, Method};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=tcpreset test CA",
            "-days",
            "2",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server -www` (a status page for any GET) on a free port of 127.0.0.1.
fn serve(dir: &Path) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-www",
            "-quiet",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Server(child), port)
}

#[test]
fn certificates_are_checked_and_a_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let (_server, port) = serve(dir.path());
    let url = format!("https://127.0.0.1:{port}/");

    let default_roots = HttpClient::new(Duration::from_secs(5), None).unwrap();
    let e = default_roots
        .send(Method::Get, &url, &[], None)
        .unwrap_err();
    assert!(matches!(e, HttpError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    let webhook = HttpUrl::parse(&format!("https://127.0.0.1:{port}/hook")).unwrap();
    let e = post_json(&webhook, &BTreeMap::new(), "{}", Duration::from_secs(5)).unwrap_err();
    assert!(e.starts_with("TLS with https://127.0.0.1:"), "{e}");

    let trusting =
        HttpClient::new(Duration::from_secs(5), Some(&dir.path().join("ca.pem"))).unwrap();
    let reply = trusting.send(Method::Get, &url, &[], None).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}
