//! Running a Run Script's lines on its sensors over SSH (I/O edge): the inventory read at each
//! run, a private control directory through which OpenSSH keeps one connection per sensor for
//! the next lines and runs, and the sensors worked on in parallel (at most `parallel` at once),
//! each within its own timeout so a dead or slow one holds up nobody else.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::exec::run_command;
use crate::playbook::act::fleet::{parse_inventory, Job, Sensor, Sensors, SshTarget};
use crate::playbook::act::status::{ActionOutcome, HostStatus};

/// `ssh`'s own exit code for a failure of its own (connection, authentication, host key).
const SSH_FAILED: i32 = 255;

/// The sensors of `target`: its list, or its inventory read now (relative to `dir`).
pub fn sensors(dir: &Path, target: &SshTarget) -> Result<Vec<Sensor>, String> {
    match &target.sensors {
        Sensors::Listed(list) => Ok(list.clone()),
        Sensors::Inventory { file, port } => {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the inventory {}: {e}", path.display()))?;
            parse_inventory(&text, *port).map_err(|e| format!("inventory {}: {e}", path.display()))
        }
    }
}

/// The longest control directory: OpenSSH binds `DIR/%C` (40 characters) plus a 17-character
/// temporary suffix, and a Unix socket's path has at most 107 bytes.
const MAX_CONTROL_DIR: usize = 107 - 1 - 40 - 17;

/// The private directory of OpenSSH's control sockets for `target`, made if need be; `None`
/// when `persist` is zero.
pub fn control_dir(target: &SshTarget) -> Result<Option<PathBuf>, String> {
    let Some((base, dir)) = control_path(target)? else {
        return Ok(None);
    };
    let uid = nix::unistd::geteuid().as_raw();
    private_dir(&base, uid)?;
    private_dir(&dir, uid)?;
    Ok(Some(dir))
}

/// Where [`control_dir`] is, and its parent, made or not: under `$XDG_RUNTIME_DIR`, else (or
/// when that path is too long for a socket) `/tmp/tcpreset-ssh-UID`, one directory per key,
/// known hosts file and network namespace (the same address is another host in another
/// namespace), so those never share a connection.
pub fn control_path(target: &SshTarget) -> Result<Option<(PathBuf, PathBuf)>, String> {
    if target.persist.is_zero() {
        return Ok(None);
    }
    let uid = nix::unistd::geteuid().as_raw();
    let netns = std::fs::read_link("/proc/self/ns/net").unwrap_or_default();
    let mut hasher = std::hash::DefaultHasher::new();
    (netns, &target.identity_file, &target.known_hosts_file).hash(&mut hasher);
    let leaf = format!("{:012x}", hasher.finish() >> 16);
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|r| !r.is_empty())
        .map(|r| PathBuf::from(r).join("tcpreset-ssh"));
    let bases = runtime
        .into_iter()
        .chain([PathBuf::from(format!("/tmp/tcpreset-ssh-{uid}"))]);
    for base in bases {
        let dir = base.join(&leaf);
        if dir.as_os_str().len() <= MAX_CONTROL_DIR {
            return Ok(Some((base, dir)));
        }
    }
    Err(format!(
        "no control directory path is short enough for a Unix socket ({MAX_CONTROL_DIR} bytes); set XDG_RUNTIME_DIR to a short path"
    ))
}

/// Makes `dir` (mode 0700) or checks that it is a directory only `uid` can enter.
fn private_dir(dir: &Path, uid: u32) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot make {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a directory of user {uid} with mode 0700 (others could reach its SSH connections); remove it or fix it",
            dir.display()
        ));
    }
    Ok(())
}

/// Works on every job, at most `target.parallel` at once; each sensor's lines run in order and
/// all of them within `timeout`. The statuses are in the jobs' order.
pub fn run_jobs(
    target: &SshTarget,
    jobs: &[Job],
    timeout: Duration,
    control: Option<&Path>,
) -> Vec<HostStatus> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<HostStatus>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..target.parallel.min(jobs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let status = run_job(target, job, timeout, control);
                done.lock().expect("no worker panics holding it")[i] = Some(status);
            });
        }
    });
    done.into_inner()
        .expect("no worker panicked")
        .into_iter()
        .flatten()
        .collect()
}

/// One sensor's lines, in order, until they are done, `timeout` is spent, or `ssh` itself fails
/// (the sensor is unreachable or refuses us: the remaining lines would fail the same way).
fn run_job(target: &SshTarget, job: &Job, timeout: Duration, control: Option<&Path>) -> HostStatus {
    let started = Instant::now();
    let where_ = format!(
        "[ssh {}@{} {}]",
        target.user,
        job.sensor.address(),
        job.sensor.name
    );
    let (mut ok, mut failed) = (0, 0);
    let mut output = Vec::new();
    let mut stop: Option<String> = None;
    for line in &job.lines {
        if let Some(why) = &stop {
            failed += 1;
            output.push(format!("{where_} {} -> not run: {why}", line.line));
            continue;
        }
        let left = timeout.saturating_sub(started.elapsed());
        let mut command = Command::new("ssh");
        command.args(target.ssh_args(&job.sensor, line, control, left));
        let (good, report) = match run_command(command, left) {
            Ok(done) => {
                match &done.status {
                    Ok(s) if s.code() == Some(SSH_FAILED) => {
                        stop = Some("ssh failed on an earlier line".into())
                    }
                    Err(_) => {
                        stop = Some(format!(
                            "the sensor's timeout ({}s) is spent",
                            timeout.as_secs_f64()
                        ))
                    }
                    Ok(_) => {}
                }
                done.report(&where_, &line.line)
            }
            Err(e) => {
                stop = Some("`ssh` could not be started".into());
                (
                    false,
                    format!(
                        "{where_} {}: cannot start `ssh`: {e}; install openssh-client",
                        line.line
                    ),
                )
            }
        };
        if good {
            ok += 1;
        } else {
            failed += 1;
        }
        output.push(report);
    }
    let outcome = match (ok, failed) {
        (0, 0) => ActionOutcome::NotTriggered,
        (_, 0) => ActionOutcome::Succeeded,
        (0, _) => ActionOutcome::Failed,
        _ => ActionOutcome::Partial,
    };
    if job.lines.is_empty() {
        output.push("no line for this sensor in this run".into());
    }
    HostStatus {
        sensor: job.sensor.name.clone(),
        address: job.sensor.address(),
        outcome,
        elapsed_ms: started.elapsed().as_millis() as u64,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_control_directory_must_be_private() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let dir = tmp.path().join("c");
        private_dir(&dir, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&dir, uid).unwrap_err();
        assert!(e.contains("mode 0700"), "{e}");
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(private_dir(&link, uid).is_err(), "a symlink is refused");
        assert!(private_dir(&tmp.path().join("o"), uid + 1).is_err());
    }

    #[test]
    fn an_inventory_is_read_relative_to_the_playbook() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("inv.yaml"),
            "a: 10.0.0.1\nb: 10.0.0.2:2200\n",
        )
        .unwrap();
        let target = |file: &str| SshTarget {
            sensors: Sensors::Inventory {
                file: file.into(),
                port: 2222,
            },
            user: "u".into(),
            identity_file: None,
            known_hosts_file: None,
            parallel: 1,
            persist: Duration::ZERO,
        };
        let s = sensors(tmp.path(), &target("inv.yaml")).unwrap();
        assert_eq!(
            s.iter().map(Sensor::address).collect::<Vec<_>>(),
            ["10.0.0.1:2222", "10.0.0.2:2200"]
        );
        let e = sensors(tmp.path(), &target("nope.yaml")).unwrap_err();
        assert!(e.contains("cannot read the inventory"), "{e}");
        assert_eq!(control_dir(&target("inv.yaml")), Ok(None));
    }

    #[test]
    fn the_control_path_fits_a_unix_socket() {
        let target = SshTarget {
            sensors: Sensors::Listed(Vec::new()),
            user: "u".into(),
            identity_file: None,
            known_hosts_file: None,
            parallel: 1,
            persist: Duration::from_secs(60),
        };
        let (_, dir) = control_path(&target).unwrap().unwrap();
        // The longest name OpenSSH binds there: the %C hash and its temporary suffix.
        let socket = dir.join(format!("{}.{}", "c".repeat(40), "t".repeat(16)));
        assert!(socket.as_os_str().len() <= 107, "{}", socket.display());
    }
}
