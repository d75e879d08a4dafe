//! Who may use the control socket: root, the configured users, and members of the configured
//! groups, checked from the peer's credentials (`SO_PEERCRED`) and its supplementary groups.
use nix::unistd::{Gid, Group, Uid, User};

/// The resolved allow list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    uids: Vec<u32>,
    gids: Vec<u32>,
    /// For messages: the groups by name.
    group_names: Vec<String>,
}

impl Allowed {
    /// Resolves user and group names (or numbers); unknown names are returned to be logged.
    pub fn resolve(users: &[String], groups: &[String]) -> (Allowed, Vec<String>) {
        let mut a = Allowed::default();
        let mut unknown = Vec::new();
        let user = |n: &str| User::from_name(n).ok().flatten().map(|u| u.uid.as_raw());
        let group = |n: &str| Group::from_name(n).ok().flatten().map(|g| g.gid.as_raw());
        for u in users {
            match number_or_name(u, user) {
                Some(uid) => a.uids.push(uid),
                None => unknown.push(format!("user '{u}'")),
            }
        }
        for g in groups {
            match number_or_name(g, group) {
                Some(gid) => a.gids.push(gid),
                None => unknown.push(format!("group '{g}'")),
            }
            a.group_names.push(g.clone());
        }
        (a, unknown)
    }

    /// Checks a peer; the error says who was refused and how to grant access.
    pub fn check(&self, uid: u32, gid: u32, pid: Option<i32>) -> Result<(), String> {
        if uid == 0 || self.uids.contains(&uid) || self.gids.contains(&gid) {
            return Ok(());
        }
        if pid
            .map(supplementary_groups)
            .unwrap_or_default()
            .iter()
            .any(|g| self.gids.contains(g))
        {
            return Ok(());
        }
        let name = User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or(uid.to_string(), |u| u.name);
        let group = self.group_names.first().map_or("tcpreset", String::as_str);
        Err(format!(
            "user {name} (uid {uid}, gid {gid}) may not use tcpresetd; add it to group {group} ('usermod -aG {group} {name}', then log in again) or to allowed_users in the configuration"
        ))
    }
}

/// `id` as a number, or the id of the name `id` as `lookup` finds it.
fn number_or_name(id: &str, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    id.parse().ok().or_else(|| lookup(id))
}

/// The supplementary groups of a process, from `/proc/PID/status`.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The gid of a group name, for chown of the socket.
pub fn group_gid(name: &str) -> Option<Gid> {
    Group::from_name(name).ok().flatten().map(|g| g.gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_numbers_and_groups() {
        let (a, unknown) =
            Allowed::resolve(&["1234".into(), "no-such-user-x".into()], &["4321".into()]);
        assert_eq!(unknown, vec!["user 'no-such-user-x'".to_owned()]);
        assert!(a.check(0, 0, None).is_ok());
        assert!(a.check(1234, 99, None).is_ok());
        assert!(a.check(99, 4321, None).is_ok());
        let e = a.check(99, 99, None).unwrap_err();
        assert!(
            e.contains("uid 99") && e.contains("usermod -aG 4321"),
            "{e}"
        );
    }

    #[test]
    fn supplementary_groups_of_this_process_are_read() {
        let pid = std::process::id() as i32;
        let groups = supplementary_groups(pid);
        let (a, _) = Allowed::resolve(&[], &groups.iter().map(u32::to_string).collect::<Vec<_>>());
        if let Some(g) = groups.first() {
            assert!(a.check(99_999, 99_999, Some(pid)).is_ok(), "group {g}");
        }
    }
}
