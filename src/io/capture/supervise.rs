//! A capture loop that panics is entered again and reported (a log line, the `restarts`
//! counter), never lost silently: one hostile frame must not stop the sensor's interface.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `body` until it returns; each panic in it is counted in `restarts`, logged (the first
/// and then at each power of two, so a flood of bad frames cannot flood the log) and `body` is
/// entered again. Its state lives outside it, so the frame that caused the panic is not read
/// again.
pub(super) fn supervise<T>(iface: &str, restarts: &AtomicU64, mut body: impl FnMut() -> T) -> T {
    loop {
        match catch_unwind(AssertUnwindSafe(&mut body)) {
            Ok(done) => return done,
            Err(payload) => {
                let n = restarts.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    let what = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    tracing::error!(
                        iface,
                        restarts = n,
                        "capture thread panicked ({what}); restarted, the capture goes on (report this as a bug, with the capture if you have one)"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_loop_is_restarted_and_counted() {
        let restarts = AtomicU64::new(0);
        let mut entered = 0;
        let done = supervise("eth1", &restarts, || {
            entered += 1;
            match entered {
                1 => panic!("a bad frame"),
                2 => panic!("{}", String::from("another")),
                _ => entered,
            }
        });
        assert_eq!(done, 3);
        assert_eq!(restarts.load(Ordering::Relaxed), 2);
    }
}
