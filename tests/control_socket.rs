//! The control socket under load and abuse, in-process: the connection cap, idle and unread
//! connections, peers refused before they send anything, the line limit, and a shutdown that
//! no client can hold up.
mod fake;

use fake::{ask, line, FakeSensor, Server};
use std::time::Duration;
use tcpreset::io::control::ServeLimits;
use tcpreset::proto::{ErrorKind, Response};

fn refused(answer: &Response) -> (ErrorKind, String) {
    match answer {
        Response::Error { kind, message } => (*kind, message.clone()),
        other => panic!("not refused: {other:?}"),
    }
}

async fn limited(limits: ServeLimits) -> Server {
    Server::start_limited(tempfile::tempdir().unwrap(), "", FakeSensor::lab(), limits).await
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_busy_and_idle_ones_are_closed() {
    let limits = ServeLimits {
        max_connections: 2,
        idle: Duration::from_millis(500),
        ..ServeLimits::default()
    };
    let server = limited(limits).await;
    let list = line(r#""op":"list""#);
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    assert_eq!(ask(&mut a, &list).await, Response::Rules { rules: vec![] });
    assert_eq!(ask(&mut b, &list).await, Response::Rules { rules: vec![] });
    let mut c = server.connect().await;
    let busy = tokio::time::timeout(Duration::from_secs(5), c.answer()).await;
    let (kind, message) = refused(&busy.expect("answered at once"));
    assert_eq!(kind, ErrorKind::Unavailable);
    assert!(
        message.contains("serving 2 control connections"),
        "{message}"
    );
    assert!(fake::closed_by_server(&mut c).await, "a busy answer closes");
    // Idle past the limit: both are closed, and a new client is served.
    assert!(
        fake::closed_by_server(&mut a).await,
        "idle connection closed"
    );
    assert!(
        fake::closed_by_server(&mut b).await,
        "idle connection closed"
    );
    let mut d = server.connect().await;
    assert_eq!(ask(&mut d, &list).await, Response::Rules { rules: vec![] });
    server.stop(d).await;
}

#[tokio::test]
async fn a_refused_peer_is_answered_before_it_sends_anything_and_cannot_hold_shutdown() {
    let mut server = Server::start_open("allowed_users = []\nallowed_groups = []\n").await;
    let mut silent = server.connect_as_user().await;
    let answer = tokio::time::timeout(Duration::from_secs(5), silent.answer())
        .await
        .expect("refused without a request");
    assert_eq!(refused(&answer).0, ErrorKind::Unauthorized);
    // It keeps the connection open and says nothing: shutdown does not wait for it.
    let stopped = server.begin_stop();
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("an idle refused peer does not hold shutdown")
        .unwrap();
    drop(silent);
}

#[tokio::test]
async fn the_line_limit_is_per_line_and_bad_bytes_are_named() {
    let server = Server::start("", FakeSensor::lab()).await;
    let mut c = server.connect().await;
    // 6,000 requests of 200 bytes: 1.2 MB on one connection, each line well under the limit.
    let padded = format!("{}{}", line(r#""op":"list""#), " ".repeat(180));
    for i in 0..6_000 {
        let answer = ask(&mut c, &padded).await;
        assert_eq!(answer, Response::Rules { rules: vec![] }, "request {i}");
    }
    c.send(b"{\"v\":1,\"op\":\"li\xffst\"}\n").await;
    let (kind, message) = refused(&c.answer().await);
    assert_eq!(kind, ErrorKind::BadRequest);
    assert!(
        message.contains("not UTF-8 text (invalid byte at offset 15)"),
        "{message}"
    );
    let too_long = "x".repeat(17 * 1024);
    let (_, message) = refused(&ask(&mut c, &too_long).await);
    assert!(
        message.contains("request longer than 16384 bytes"),
        "{message}"
    );
    let answer = ask(&mut c, &line(r#""op":"list""#)).await;
    assert_eq!(
        answer,
        Response::Rules { rules: vec![] },
        "served after both"
    );
    server.stop(c).await;
}

#[tokio::test]
async fn shutdown_closes_a_client_that_does_not_read_its_answers_after_the_drain() {
    let limits = ServeLimits {
        write: Duration::from_secs(3600),
        drain: Duration::from_millis(300),
        ..ServeLimits::default()
    };
    let mut server = limited(limits).await;
    let mut greedy = server.connect().await;
    // Requests whose answers fill both socket buffers: the server blocks writing.
    let stats = format!("{}\n", line(r#""op":"stats""#)).repeat(20_000);
    let sending = tokio::spawn(async move {
        greedy.send(stats.as_bytes()).await;
        greedy
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = server.begin_stop();
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("serve returns after the drain deadline")
        .unwrap();
    sending.abort();
}
