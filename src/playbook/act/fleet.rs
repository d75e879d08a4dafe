//! Where a Run Script runs its lines, decided without side effects: the local host, or one or
//! many sensors over SSH (listed in the playbook or named in an inventory file), each line to
//! every sensor or, with `route_by`, only to the sensor a record names; and the `ssh` argv of
//! one line to one sensor.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::command::{shell_quote, CheckedLine, Refusal};

/// Where a Run Script action runs its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Local,
    Ssh(SshTarget),
}

/// One or many sensors reached over SSH with one user and one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshTarget {
    pub sensors: Sensors,
    pub user: String,
    pub identity_file: Option<String>,
    pub known_hosts_file: Option<String>,
    /// How many sensors are worked on at once.
    pub parallel: usize,
    /// How long an idle SSH connection is kept for the next line or run (OpenSSH
    /// `ControlPersist`); zero: one connection per line.
    #[serde(with = "as_secs")]
    pub persist: Duration,
}

/// The sensors of a target: listed in the playbook, or in an inventory file read at each run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensors {
    Listed(Vec<Sensor>),
    /// The inventory's path (relative to the playbook's directory) and the default port.
    Inventory {
        file: String,
        port: u16,
    },
}

/// A sensor: the name records and `route_by` know it by, and where its `sshd` listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sensor {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The default of `parallel`.
pub const DEFAULT_PARALLEL: usize = 10;
/// The most sensors worked on at once.
pub const MAX_PARALLEL: usize = 256;
/// The default of `persist`.
pub const DEFAULT_PERSIST: Duration = Duration::from_secs(600);

mod as_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

impl Sensor {
    /// A sensor named `name` at `address`: `host`, `host:port`, `[v6]:port` or a bare IPv6
    /// address; `port` when the address has none.
    pub fn parse(name: &str, address: &str, port: u16) -> Result<Sensor, String> {
        let (host, port) = split_address(address, port)?;
        check_host(&host)?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "sensor name {name:?} must be one word without control characters"
            ));
        }
        Ok(Sensor {
            name: name.to_string(),
            host,
            port,
        })
    }

    /// `host:port` (`[v6]:port`), as reports show it.
    pub fn address(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

fn split_address(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("`{address}`: bad port `{p}` (1-65535)");
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(p)),
        Ok(n) => Ok(n),
    };
    if let Some(rest) = address.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{address}`: `[` without `]`"))?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), port(p)?)),
            None if tail.is_empty() => Ok((host.to_string(), default_port)),
            None => Err(format!("`{address}`: write `[v6]:port`")),
        };
    }
    if address.parse::<IpAddr>().is_ok() {
        return Ok((address.to_string(), default_port));
    }
    match address.split_once(':') {
        Some((host, p)) => Ok((host.to_string(), port(p)?)),
        None => Ok((address.to_string(), default_port)),
    }
}

/// A host `ssh` cannot read as an option: an IP address or a host name.
fn check_host(host: &str) -> Result<(), String> {
    let ok = host.parse::<IpAddr>().is_ok()
        || (!host.starts_with('-')
            && !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b)));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "ssh host `{host}` must be an IP address or a host name"
        )),
    }
}

/// Reads an inventory: a YAML mapping of sensor names to addresses (`host`, `host:port`,
/// `[v6]:port`), `port` for those without one.
pub fn parse_inventory(text: &str, port: u16) -> Result<Vec<Sensor>, String> {
    let map: BTreeMap<String, String> = serde_saphyr::from_str(text).map_err(|e| {
        format!("not a mapping of sensor names to addresses (`sensor-a: 10.0.0.5:22`): {e}")
    })?;
    if map.is_empty() {
        return Err("the inventory names no sensor".into());
    }
    map.iter()
        .map(|(name, address)| {
            Sensor::parse(name, address, port).map_err(|e| format!("sensor `{name}`: {e}"))
        })
        .collect()
}

impl SshTarget {
    /// Checks the fields so none can be read by `ssh` as an option.
    pub fn check(&self) -> Result<(), String> {
        let user_ok = !self.user.starts_with('-')
            && !self.user.is_empty()
            && self
                .user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !user_ok {
            return Err(format!(
                "ssh user `{}` must be letters, digits, . _ -",
                self.user
            ));
        }
        if !(1..=MAX_PARALLEL).contains(&self.parallel) {
            return Err(format!("ssh `parallel` must be 1 to {MAX_PARALLEL}"));
        }
        for path in [&self.identity_file, &self.known_hosts_file]
            .into_iter()
            .flatten()
        {
            if path.is_empty() || path.contains(['\n', '\r', '\0']) {
                return Err(format!("ssh file {path:?} must be a path on one line"));
            }
        }
        Ok(())
    }

    /// The `ssh` argv that runs one checked line on `sensor`: batch mode (no prompts), host keys
    /// checked, the connection shared through `control` (a private directory) or not shared at
    /// all, and the remote command built from shell-quoted words.
    pub fn ssh_args(
        &self,
        sensor: &Sensor,
        line: &CheckedLine,
        control: Option<&Path>,
        timeout: Duration,
    ) -> Vec<String> {
        let connect = timeout.as_secs().clamp(1, 10);
        let mut args: Vec<String> = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={connect}"),
        ];
        match control {
            Some(dir) => args.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}/%C", dir.display()),
                "-o".into(),
                format!("ControlPersist={}", self.persist.as_secs().max(1)),
            ]),
            None => args.extend([
                "-o".into(),
                "ControlMaster=no".into(),
                "-o".into(),
                "ControlPath=none".into(),
            ]),
        }
        if let Some(known) = &self.known_hosts_file {
            args.extend(["-o".into(), format!("UserKnownHostsFile={known}")]);
        }
        if let Some(key) = &self.identity_file {
            args.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                key.clone(),
            ]);
        }
        args.extend([
            "-p".into(),
            sensor.port.to_string(),
            "-l".into(),
            self.user.clone(),
            "--".into(),
            sensor.host.clone(),
        ]);
        let remote: Vec<String> = std::iter::once(&line.program)
            .chain(&line.args)
            .map(|w| shell_quote(w))
            .collect();
        args.push(remote.join(" "));
        args
    }
}

/// The lines one sensor gets in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub sensor: Sensor,
    pub lines: Vec<CheckedLine>,
}

impl Job {
    /// What a dry run prints for the job: the `ssh` command of each line.
    pub fn describe(
        &self,
        target: &SshTarget,
        control: Option<&Path>,
        timeout: Duration,
    ) -> Vec<String> {
        let sensor = format!("sensor {} ({})", self.sensor.name, self.sensor.address());
        if self.lines.is_empty() {
            return vec![format!("{sensor}: no line for this sensor")];
        }
        self.lines
            .iter()
            .map(|l| {
                let argv: Vec<String> = target
                    .ssh_args(&self.sensor, l, control, timeout)
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect();
                format!("would run over ssh on {sensor}: ssh {}", argv.join(" "))
            })
            .collect()
    }
}

/// Sends each line to every sensor, or (a line routed by `route_by`) only to the sensor it
/// names. A name not among the sensors refuses its line: it is never used as a host name.
/// Every sensor has a job, if an empty one, so the status shows each.
pub fn dispatch(sensors: &[Sensor], lines: &[CheckedLine]) -> (Vec<Job>, Vec<Refusal>) {
    let mut jobs: Vec<Job> = sensors
        .iter()
        .map(|s| Job {
            sensor: s.clone(),
            lines: Vec::new(),
        })
        .collect();
    let mut refused = Vec::new();
    for line in lines {
        match &line.sensor {
            None => jobs.iter_mut().for_each(|j| j.lines.push(line.clone())),
            Some(name) => match jobs.iter_mut().find(|j| &j.sensor.name == name) {
                Some(job) => job.lines.push(line.clone()),
                None => refused.push(Refusal {
                    line: line.line.clone(),
                    reason: format!(
                        "routed to sensor `{name}`, which is not among the target's sensors ({}); add it to the inventory or fix the record field",
                        sensors.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }),
            },
        }
    }
    (jobs, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, sensor: Option<&str>) -> CheckedLine {
        CheckedLine {
            line: text.into(),
            program: "tcpreset".into(),
            args: text.split(' ').skip(1).map(String::from).collect(),
            sensor: sensor.map(String::from),
        }
    }

    fn target() -> SshTarget {
        SshTarget {
            sensors: Sensors::Listed(Vec::new()),
            user: "tcpreset".into(),
            identity_file: Some("/k".into()),
            known_hosts_file: Some("/kh".into()),
            parallel: DEFAULT_PARALLEL,
            persist: DEFAULT_PERSIST,
        }
    }

    #[test]
    fn addresses() {
        let s = |a: &str| Sensor::parse("s", a, 22).map(|s| (s.host, s.port));
        assert_eq!(s("sensor-a"), Ok(("sensor-a".into(), 22)));
        assert_eq!(s("sensor-b:2222"), Ok(("sensor-b".into(), 2222)));
        assert_eq!(s("10.0.0.5"), Ok(("10.0.0.5".into(), 22)));
        assert_eq!(s("fd00::5"), Ok(("fd00::5".into(), 22)));
        assert_eq!(s("[fd00::5]:2200"), Ok(("fd00::5".into(), 2200)));
        assert_eq!(s("[fd00::5]"), Ok(("fd00::5".into(), 22)));
        for bad in [
            "-oProxyCommand=sh",
            "a b",
            "x:0",
            "x:65536",
            "x:y",
            "[fd00::5",
            "",
            "user@host",
            "$(id)",
        ] {
            assert!(s(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Sensor::parse("a b", "10.0.0.1", 22).is_err());
        assert_eq!(
            Sensor::parse("s", "fd00::5", 22).unwrap().address(),
            "[fd00::5]:22"
        );
    }

    #[test]
    fn inventories() {
        let inv = parse_inventory("sensor-a: 10.0.0.1\nsensor-b: \"10.0.0.2:2222\"\n", 22).unwrap();
        assert_eq!(
            inv.iter().map(Sensor::address).collect::<Vec<_>>(),
            ["10.0.0.1:22", "10.0.0.2:2222"]
        );
        assert_eq!(inv[1].name, "sensor-b");
        let e = parse_inventory("sensor-a: -oProxyCommand=x\n", 22).unwrap_err();
        assert!(e.contains("sensor `sensor-a`"), "{e}");
        assert!(parse_inventory("[a, b]", 22)
            .unwrap_err()
            .contains("mapping"));
        assert!(parse_inventory("{}", 22).unwrap_err().contains("no sensor"));
    }

    #[test]
    fn every_sensor_gets_unrouted_lines_and_only_its_own_routed_ones() {
        let sensors: Vec<Sensor> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| Sensor::parse(n, &format!("10.0.0.{}", i + 1), 22).unwrap())
            .collect();
        let lines = [
            line("tcpreset e -h 10.1.1.1", None),
            line("tcpreset e -h 10.1.1.2", Some("b")),
            line("tcpreset e -h 10.1.1.3", Some("10.0.0.1")),
        ];
        let (jobs, refused) = dispatch(&sensors, &lines);
        let counts: Vec<usize> = jobs.iter().map(|j| j.lines.len()).collect();
        assert_eq!(counts, [1, 2, 1]);
        assert_eq!(jobs[1].lines[1].line, "tcpreset e -h 10.1.1.2");
        // An address is not a name: the value is never used to reach a host.
        assert_eq!(refused.len(), 1);
        assert!(refused[0].reason.contains("`10.0.0.1`"), "{refused:?}");
        assert!(refused[0].reason.contains("a, b, c"), "{refused:?}");
    }

    #[test]
    fn ssh_argv_shares_the_connection_only_through_the_private_directory() {
        let t = target();
        let sensor = Sensor::parse("s", "[fd00::5]:2222", 22).unwrap();
        let l = CheckedLine {
            program: "/usr/local/bin/tcp reset".into(),
            ..line("tcpreset e1 -h 10.0.0.1", None)
        };
        let args = t.ssh_args(
            &sensor,
            &l,
            Some(Path::new("/run/x")),
            Duration::from_secs(3),
        );
        let has = |w: &[&str]| args.windows(w.len()).any(|a| a == w);
        assert!(has(&["-o", "BatchMode=yes"]));
        assert!(has(&["-o", "StrictHostKeyChecking=yes"]));
        assert!(has(&["-o", "ConnectTimeout=3"]));
        assert!(has(&["-o", "ControlMaster=auto"]));
        assert!(has(&["-o", "ControlPath=/run/x/%C"]));
        assert!(has(&["-o", "ControlPersist=600"]));
        assert!(has(&["-p", "2222"]));
        assert_eq!(args[args.len() - 3..args.len() - 1], ["--", "fd00::5"]);
        assert_eq!(
            args.last().unwrap(),
            "'/usr/local/bin/tcp reset' e1 -h 10.0.0.1"
        );
        let args = t.ssh_args(&sensor, &l, None, Duration::from_secs(60));
        let has = |w: &[&str]| args.windows(w.len()).any(|a| a == w);
        assert!(has(&["-o", "ControlMaster=no"]));
        assert!(has(&["-o", "ControlPath=none"]));
        assert!(has(&["-o", "ConnectTimeout=10"]));
    }

    #[test]
    fn target_checks() {
        assert!(target().check().is_ok());
        for bad in [
            SshTarget {
                user: "-oX".into(),
                ..target()
            },
            SshTarget {
                parallel: 0,
                ..target()
            },
            SshTarget {
                identity_file: Some("/k\n".into()),
                ..target()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
