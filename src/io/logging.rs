//! Where the daemon's log goes: `tracing` filtered by `RUST_LOG` (default `info`), to the
//! systemd journal in its native protocol when stderr is the journal and the format is text
//! (every field of an event, such as `engid` or `host`, becomes a journal field: `ENGID`,
//! `HOST`), else to stderr as text, JSON lines, or Elastic Common Schema documents
//! ([`crate::ecs`] decides their fields).
use crate::config::LogFormat;
use crate::ecs;
use serde_json::Value;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; call once, before anything logs. JSON and ECS stay lines on
/// stderr under systemd too (the journal then stores each line as text).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if format == LogFormat::Text && stderr_is_journal() {
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
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
        LogFormat::Ecs => builder.event_format(Ecs).init(),
    }
}

/// Writes each event as one ECS document.
struct Ecs;

impl<S, N> FormatEvent<S, N> for Ecs
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let timestamp = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let doc = ecs::document(&ecs::Event {
            timestamp: &timestamp,
            level: &meta.level().as_str().to_ascii_lowercase(),
            target: meta.target(),
            message: &fields.message,
            fields: &fields.values,
        });
        writeln!(writer, "{doc}")
    }
}

/// An event's message and fields as JSON values.
#[derive(Default)]
struct Fields {
    message: String,
    values: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.values.push((field.name(), text.into()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.values.push((field.name(), value.into()));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values.push((field.name(), value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.push((field.name(), value.into()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values.push((field.name(), value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.push((field.name(), value.into()));
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
