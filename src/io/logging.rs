//! Where the daemon's log goes: `tracing` filtered by `RUST_LOG` (default `info`), to the
//! systemd journal in its native protocol when stderr is the journal (every field of an event,
//! such as `engid` or `host`, becomes a journal field: `ENGID`, `HOST`), else to stderr as text
//! or JSON lines.
use std::io::IsTerminal;
use std::os::fd::AsFd;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; call once, before anything logs. `json` asks for JSON lines
/// on stderr; it also keeps them under systemd (the journal then stores each line as text).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if !json && stderr_is_journal() {
        // No socket (journald stopped): fall back to text on stderr, which systemd still reads.
        if let Ok(journal) = tracing_journald::layer() {
            let journal = journal.with_field_prefix(None);
            tracing_subscriber::registry()
                .with(filter)
                .with(journal)
                .init();
            return;
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Whether systemd connected stderr to the journal: `$JOURNAL_STREAM` names its device and inode.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    names_stream(&stream.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// `$JOURNAL_STREAM` is `DEVICE:INODE` in decimal (systemd.exec(5)).
fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

#[cfg(test)]
mod tests {
    use super::names_stream;

    #[test]
    fn journal_stream_names_device_and_inode() {
        assert!(names_stream("8:123456", 8, 123_456));
        assert!(!names_stream("8:123456", 8, 123_457), "another inode");
        assert!(!names_stream("9:123456", 8, 123_456), "another device");
        assert!(!names_stream("8", 8, 123_456));
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("x:y", 0, 0));
    }
}
