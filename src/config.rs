//! The daemon's configuration file (`/etc/tcpreset/tcpresetd.toml`): every key, its default, and
//! the checks that make a bad file an error naming the key and the line.
pub use crate::net::Cidr;
use crate::syntax;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where the daemon looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/tcpreset/tcpresetd.toml";

/// The configuration, with defaults for every key the file leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Control socket path.
    pub socket: PathBuf,
    /// Where the rule table is kept across restarts.
    pub state_dir: PathBuf,
    /// Group that owns the socket; its members may register resets.
    pub socket_group: String,
    /// Users (names or uids) allowed besides root and the members of `allowed_groups`.
    pub allowed_users: Vec<String>,
    /// Groups whose members are allowed.
    pub allowed_groups: Vec<String>,
    /// Sniff interfaces captured from the start (flows known before any rule).
    pub track: Track,
    /// Most tracked flows in the whole daemon, shared by every capture; 0 turns tracking off.
    pub max_flows: usize,
    /// Seconds after which a silent tracked flow is forgotten.
    pub flow_idle_seconds: u64,
    /// Addresses and networks never reset (the sensor's own addresses always are).
    pub protected: Vec<Cidr>,
    /// Most rules alive at once.
    pub max_rules: usize,
    /// Longest duration a rule may ask for, in seconds.
    pub max_seconds: u64,
    /// RSTs per second the whole daemon may send.
    pub rst_rate: u32,
    /// RSTs sent toward one end of one connection, at most.
    pub flow_rst_budget: u32,
    /// Log as JSON lines: the same as `log_format = "json"` (kept for older files).
    pub log_json: bool,
    /// How log lines are written: text, JSON, or ECS documents; wins over `log_json`.
    pub log_format: Option<LogFormat>,
    /// A Prometheus text file for node_exporter's textfile collector, rewritten every 10 s.
    pub metrics_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: PathBuf::from("/run/tcpreset/tcpresetd.sock"),
            state_dir: PathBuf::from("/var/lib/tcpreset"),
            socket_group: "tcpreset".into(),
            allowed_users: Vec::new(),
            allowed_groups: vec!["tcpreset".into()],
            track: Track::Auto,
            max_flows: crate::flows::DEFAULT_MAX_FLOWS,
            flow_idle_seconds: crate::flows::DEFAULT_IDLE.as_secs(),
            protected: Vec::new(),
            max_rules: 10_000,
            max_seconds: syntax::MAX_SECONDS,
            rst_rate: 20_000,
            flow_rst_budget: 500,
            log_json: false,
            log_format: None,
            metrics_file: None,
        }
    }
}

/// How the daemon writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// JSON lines with `tracing`'s own fields.
    Json,
    /// JSON lines as Elastic Common Schema documents (see [`crate::ecs`]).
    Ecs,
}

/// Which sniff interfaces the daemon captures from the start, rule or no rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Track {
    /// Every interface that could be a SPAN/TAP port: up, not loopback, with no IPv4 address
    /// and no global IPv6 address (see [`crate::interfaces::Links::sniff_ports`]).
    #[default]
    Auto,
    /// These interfaces; none for `[]`.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for Track {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Track;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"auto\" or a list of interface names, e.g. [\"eth1\"] ([] for none)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Track, E> {
                if v == "auto" {
                    Ok(Track::Auto)
                } else {
                    Err(E::custom(format!(
                        "track = \"{v}\": give \"auto\" or a list of interface names, e.g. [\"{v}\"]"
                    )))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Track, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Track::List(names))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {key} = {value}: {why}")]
    Value {
        path: String,
        key: &'static str,
        value: String,
        why: String,
    },
}

impl Config {
    /// Parses the text of a configuration file named `path` (for messages).
    pub fn parse(path: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: String, why: &str| ConfigError::Value {
            path: path.to_owned(),
            key,
            value,
            why: why.to_owned(),
        };
        if let Track::List(names) = &self.track {
            for iface in names {
                syntax::interface(iface)
                    .map_err(|e| bad("track", iface.clone(), &e.to_string()))?;
            }
        }
        if !(1..=syntax::MAX_SECONDS).contains(&self.max_seconds) {
            return Err(bad(
                "max_seconds",
                self.max_seconds.to_string(),
                "give 1..=86400",
            ));
        }
        if self.max_rules == 0 {
            return Err(bad("max_rules", "0".into(), "give at least 1"));
        }
        if self.rst_rate == 0 {
            return Err(bad(
                "rst_rate",
                "0".into(),
                "give RSTs per second, at least 1",
            ));
        }
        if self.flow_rst_budget < 2 {
            return Err(bad(
                "flow_rst_budget",
                self.flow_rst_budget.to_string(),
                "give at least 2",
            ));
        }
        if self.flow_idle_seconds == 0 {
            return Err(bad("flow_idle_seconds", "0".into(), "give at least 1"));
        }
        Ok(())
    }

    /// The log format in force: `log_format`, else JSON if `log_json`, else text.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(if self.log_json {
            LogFormat::Json
        } else {
            LogFormat::Text
        })
    }

    pub fn flow_idle(&self) -> Duration {
        Duration::from_secs(self.flow_idle_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("t", "").unwrap(), Config::default());
    }

    #[test]
    fn the_shipped_file_parses() {
        let text = include_str!("../config/tcpresetd.toml");
        Config::parse("config/tcpresetd.toml", text).unwrap();
    }

    #[test]
    fn track_is_auto_by_default_a_list_or_off() {
        assert_eq!(Config::default().track, Track::Auto);
        let parsed = |text: &str| Config::parse("t", text).map(|c| c.track);
        assert_eq!(parsed("track = \"auto\"").unwrap(), Track::Auto);
        assert_eq!(
            parsed("track = [\"eth1\", \"eth2\"]").unwrap(),
            Track::List(vec!["eth1".into(), "eth2".into()])
        );
        assert_eq!(parsed("track = []").unwrap(), Track::List(Vec::new()));
        let e = parsed("\ntrack = \"eth1\"").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("give \"auto\""), "{e}");
        let e = parsed("track = 3").unwrap_err().to_string();
        assert!(e.contains("\"auto\" or a list"), "{e}");
        let e = parsed("track = [\"bad/name\"]").unwrap_err().to_string();
        assert!(e.contains("track = bad/name"), "{e}");
    }

    #[test]
    fn log_format_is_text_json_or_ecs_and_log_json_an_alias() {
        let format = |text: &str| Config::parse("t", text).map(|c| c.log_format());
        assert_eq!(format("").unwrap(), LogFormat::Text);
        assert_eq!(format("log_json = true").unwrap(), LogFormat::Json);
        assert_eq!(format("log_format = \"ecs\"").unwrap(), LogFormat::Ecs);
        assert_eq!(
            format("log_json = true\nlog_format = \"text\"").unwrap(),
            LogFormat::Text
        );
        let e = format("log_format = \"xml\"").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("ecs"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = Config::parse("f.toml", "max_rules = 5\nmax_rule = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.toml") && e.contains("line 2") && e.contains("max_rule"),
            "{e}"
        );
        let e = Config::parse("f.toml", "max_rules = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("max_rules"), "{e}");
        let e = Config::parse("f.toml", "protected = [\"10.0.0.0/33\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("prefix length"), "{e}");
        let e = Config::parse("f.toml", "max_seconds = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_seconds = 0"), "{e}");
        assert!(!e.contains('\n'));
    }
}
