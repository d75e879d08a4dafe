//! The control socket's bounds: connections at once, time per line and per answer, the drain
//! at shutdown, the back-off on failing `accept()`, and a request line read within its limit.
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How much the control socket gives each client, and how long shutdown waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; one more is answered "busy" and closed.
    pub max_connections: usize,
    /// A connection that sends no complete line for this long is closed.
    pub idle: Duration,
    /// An answer the client does not read within this closes the connection.
    pub write: Duration,
    /// At shutdown, connections still busy after this are closed.
    pub drain: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 256,
            idle: Duration::from_secs(30),
            write: Duration::from_secs(10),
            drain: Duration::from_secs(5),
        }
    }
}

/// Failing `accept()` calls (EMFILE, ENFILE, ENOBUFS): how long to wait before the next one,
/// and which failure starts an episode (logged once) or which success ends it.
#[derive(Debug, Default)]
pub(super) struct AcceptBackoff {
    failures: u64,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);

    /// A failed accept: the wait before the next try (doubling from 10 ms to 1 s), and whether
    /// it is the first failure of an episode.
    pub(super) fn failed(&mut self) -> (Duration, bool) {
        self.failures += 1;
        let doublings = (self.failures - 1).min(7) as u32;
        let wait = (Self::FIRST * 2u32.pow(doublings)).min(Self::MOST);
        (wait, self.failures == 1)
    }

    /// A successful accept: the number of failures of the episode it ends, if one was going on.
    pub(super) fn succeeded(&mut self) -> Option<u64> {
        Some(std::mem::take(&mut self.failures)).filter(|n| *n > 0)
    }
}

/// One request line as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// The bytes of the line, without its end (`\n` or `\r\n`).
    Bytes(Vec<u8>),
    /// The line was longer than the limit; it was read to its end and thrown away.
    TooLong,
}

/// Reads the next line, holding at most `max` bytes of it; `None` at the end of the stream.
/// A last line without a newline counts as a line.
pub(super) async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any.then(|| finish(line, too_long)));
        }
        any = true;
        let (part, used, ends) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long && line.len() + part.len() > max + usize::from(part.ends_with(b"\r")) {
            too_long = true;
            line = Vec::new();
        }
        if !too_long {
            line.extend_from_slice(part);
        }
        reader.consume(used);
        if ends {
            return Ok(Some(finish(line, too_long)));
        }
    }
}

fn finish(mut line: Vec<u8>, too_long: bool) -> Line {
    if too_long {
        return Line::TooLong;
    }
    if line.ends_with(b"\r") {
        line.pop();
    }
    Line::Bytes(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[test]
    fn backoff_doubles_to_a_second_and_reports_episodes_once() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.succeeded(), None);
        let waits: Vec<(u64, bool)> = (0..10)
            .map(|_| b.failed())
            .map(|(w, first)| (w.as_millis() as u64, first))
            .collect();
        assert_eq!(waits[0], (10, true));
        assert_eq!(waits[1], (20, false));
        assert_eq!(waits[6], (640, false));
        assert!(waits[7..].iter().all(|w| *w == (1000, false)), "{waits:?}");
        assert_eq!(b.succeeded(), Some(10));
        assert_eq!(b.succeeded(), None);
        assert_eq!(b.failed(), (Duration::from_millis(10), true));
    }

    async fn lines(input: &[u8], max: usize, capacity: usize) -> Vec<Line> {
        let mut r = BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        while let Some(line) = next_line(&mut r, max).await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_capped_one_by_one_not_per_stream() {
        let bytes = |s: &str| Line::Bytes(s.as_bytes().to_vec());
        let long = format!("{}\n", "x".repeat(11));
        for capacity in [1, 3, 64] {
            let input = format!("abc\r\n{long}0123456789\n\nlast");
            assert_eq!(
                lines(input.as_bytes(), 10, capacity).await,
                [
                    bytes("abc"),
                    Line::TooLong,
                    bytes("0123456789"),
                    bytes(""),
                    bytes("last")
                ],
                "capacity {capacity}"
            );
        }
        // Many lines whose sum is far above the limit: each is read.
        let many = "0123456789\n".repeat(1000);
        assert_eq!(lines(many.as_bytes(), 10, 8).await.len(), 1000);
        assert!(lines(b"", 10, 8).await.is_empty());
    }
}
