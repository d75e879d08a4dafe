//! `tcpresetd`'s command line (here, not in the binary, so man pages can be generated from it).
use crate::config::Config;
use clap::Parser;
use std::path::PathBuf;

/// Resets the TCP connections of hosts named by rules, seen on a monitoring interface.
#[derive(Parser, Debug, Clone)]
#[command(name = "tcpresetd", version)]
pub struct DaemonArgs {
    /// Configuration file; a missing default file means all defaults.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Control socket path [config: socket].
    #[arg(long, env = "TCPRESET_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Directory of the saved rules [config: state_dir].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Capture this sniff interface from the start, even with no rule, so that connections
    /// opened before a rule are known and silent ones die at once; repeatable; replaces the
    /// default of every interface with no IP address of its own [config: track].
    #[arg(long, value_name = "IFACE")]
    pub track: Vec<String>,
    /// Most TCP flows tracked, shared by every sniff interface, 0 for none [config: max_flows]; with
    /// --replay, tracking is on only when this is given.
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,
    /// Seconds after which a silent tracked flow is forgotten [config: flow_idle_seconds].
    #[arg(long, value_name = "SECONDS")]
    pub flow_idle: Option<u64>,
    /// Log as JSON lines, as --log-format json does [config: log_json].
    #[arg(long)]
    pub log_json: bool,
    /// Log as text, JSON lines, or Elastic Common Schema documents [config: log_format].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
    /// Replay this capture instead of sniffing (needs --rules and --inject-to).
    #[arg(long, value_name = "IN.pcap", requires_all = ["rules", "inject_to"])]
    pub replay: Option<PathBuf>,
    /// Rules for --replay: a JSON array of {engid, host, port, start, seconds}.
    #[arg(long, value_name = "RULES.json", requires = "replay")]
    pub rules: Option<PathBuf>,
    /// Where --replay writes the RSTs it would inject, as Ethernet frames.
    #[arg(long, value_name = "OUT.pcap", requires = "replay")]
    pub inject_to: Option<PathBuf>,
}

impl DaemonArgs {
    /// Flags given on the command line win over the file.
    pub fn apply(&self, mut config: Config) -> Config {
        if let Some(s) = &self.socket {
            config.socket = s.clone();
        }
        if let Some(d) = &self.state_dir {
            config.state_dir = d.clone();
        }
        if !self.track.is_empty() {
            config.track = crate::config::Track::List(self.track.clone());
        }
        if let Some(n) = self.max_flows {
            config.max_flows = n;
        }
        if let Some(s) = self.flow_idle {
            config.flow_idle_seconds = s;
        }
        if self.log_json {
            config.log_format = Some(crate::config::LogFormat::Json);
        }
        if let Some(f) = self.log_format {
            config.log_format = Some(f);
        }
        config
    }
}
