//! The image's account databases: `/etc/passwd`, `/etc/group`, `/etc/shadow`, `/etc/gshadow`
//! (and `/usr/lib/passwd`, `/usr/lib/group` where nss-altfiles keeps the system accounts).
//!
//! Formats (passwd(5), group(5), shadow(5), gshadow(5)), one entry a line, fields separated by
//! `:`:
//! - passwd: `name:password:uid:gid:gecos:home:shell`
//! - group: `name:password:gid:member,member,…`
//! - shadow and gshadow: `name:…` (only the name matters here)
//!
//! Blank lines and lines starting with `#` are skipped. NIS compat lines (`+…`, `-…`) name no
//! local account and are skipped. A malformed line is an error naming the file and line number:
//! names and ids resolved here decide file ownership in the image, so guessing is not an option.
//! Ids are always taken from these files, never from the host's NSS.

use std::collections::BTreeMap;

pub use super::parse_error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

fn records<'a>(text: &'a str) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim_end_matches('\r');
        if l.trim().is_empty() || l.starts_with('#') || l.starts_with('+') || l.starts_with('-') {
            None
        } else {
            Some((i + 1, l.split(':').collect()))
        }
    })
}

fn parse_id(file: &str, line: usize, what: &str, s: &str) -> Result<u32, ParseError> {
    s.parse().map_err(|_| ParseError {
        file: file.into(),
        line,
        reason: format!("{what} {s:?} is not a number"),
    })
}

/// Parse passwd(5) text. `file` names the file in errors.
pub fn parse_passwd(file: &str, text: &str) -> Result<Vec<User>, ParseError> {
    records(text)
        .map(|(line, f)| {
            if f.len() != 7 {
                return Err(ParseError {
                    file: file.into(),
                    line,
                    reason: format!("expected 7 fields separated by ':', found {}", f.len()),
                });
            }
            Ok(User {
                name: f[0].to_string(),
                uid: parse_id(file, line, "uid", f[2])?,
                gid: parse_id(file, line, "gid", f[3])?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parse group(5) text.
pub fn parse_group(file: &str, text: &str) -> Result<Vec<Group>, ParseError> {
    records(text)
        .map(|(line, f)| {
            if f.len() != 4 {
                return Err(ParseError {
                    file: file.into(),
                    line,
                    reason: format!("expected 4 fields separated by ':', found {}", f.len()),
                });
            }
            Ok(Group {
                name: f[0].to_string(),
                gid: parse_id(file, line, "gid", f[2])?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// The names in shadow(5) or gshadow(5) text, with their line numbers.
pub fn parse_shadow_names(text: &str) -> Vec<(usize, String)> {
    records(text)
        .map(|(line, f)| (line, f[0].to_string()))
        .collect()
}

/// Remove the lines of shadow/gshadow `text` whose name is not in `keep`; returns the new text
/// and the removed names. Everything else (comments, order, line endings) is kept as it was.
pub fn drop_shadow_entries(text: &str, keep: &dyn Fn(&str) -> bool) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut dropped = Vec::new();
    for l in text.split_inclusive('\n') {
        let content = l.trim_end_matches(['\n', '\r']);
        let is_entry = !(content.trim().is_empty()
            || content.starts_with('#')
            || content.starts_with('+')
            || content.starts_with('-'));
        let name = content.split(':').next().unwrap_or("");
        if is_entry && !keep(name) {
            dropped.push(name.to_string());
        } else {
            out.push_str(l);
        }
    }
    (out, dropped)
}

/// All accounts of the image: passwd and group entries from /etc and, where present, from
/// /usr/lib (nss-altfiles). Where a name is in both, /etc wins, as with nss `files altfiles`.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Accounts {
    /// Build from the already-parsed files, /etc first.
    pub fn merge(
        etc_users: Vec<User>,
        lib_users: Vec<User>,
        etc_groups: Vec<Group>,
        lib_groups: Vec<Group>,
    ) -> Self {
        let mut users: BTreeMap<String, User> = BTreeMap::new();
        for u in lib_users.into_iter().chain(etc_users) {
            users.insert(u.name.clone(), u);
        }
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for g in lib_groups.into_iter().chain(etc_groups) {
            groups.insert(g.name.clone(), g);
        }
        let mut users: Vec<User> = users.into_values().collect();
        users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
        let mut groups: Vec<Group> = groups.into_values().collect();
        groups.sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
        Accounts { users, groups }
    }

    /// The user name for `uid`, as the image sees it (first entry in uid order).
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.name.as_str())
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    pub fn has_user(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.name == name)
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_parses_and_skips_comments_and_nis() {
        let t = "root:x:0:0:root:/root:/bin/bash\n# comment\n\n+::::::\n_chrony:x:100:101:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin\n";
        let u = parse_passwd("/etc/passwd", t).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].name, "_chrony");
        assert_eq!((u[1].uid, u[1].gid), (100, 101));
        assert_eq!(u[1].gecos, "Chrony daemon,,,");
        assert_eq!(u[1].home, "/var/lib/chrony");
    }

    #[test]
    fn passwd_errors_name_file_and_line() {
        let e = parse_passwd(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nbad:x:zero:0:::\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "/etc/passwd:2: uid \"zero\" is not a number");
        let e = parse_passwd("/etc/passwd", "a:b:c\n").unwrap_err();
        assert!(e.to_string().contains("expected 7 fields"), "{e}");
    }

    #[test]
    fn group_members() {
        let g = parse_group("/etc/group", "sudo:x:27:alice, bob\nempty:x:5:\n").unwrap();
        assert_eq!(g[0].members, vec!["alice", "bob"]);
        assert!(g[1].members.is_empty());
        assert!(parse_group("/etc/group", "x:x:1\n").is_err());
    }

    #[test]
    fn shadow_names_and_drop() {
        let t = "root:*:19000:0:99999:7:::\nghost:!:1::::::\nalice:$6$x:1::::::\n";
        assert_eq!(
            parse_shadow_names(t),
            vec![
                (1, "root".to_string()),
                (2, "ghost".to_string()),
                (3, "alice".to_string())
            ]
        );
        let (out, dropped) = drop_shadow_entries(t, &|n| n != "ghost");
        assert_eq!(dropped, vec!["ghost"]);
        assert_eq!(out, "root:*:19000:0:99999:7:::\nalice:$6$x:1::::::\n");
    }

    #[test]
    fn merge_prefers_etc_and_sorts_by_id() {
        let etc = parse_passwd(
            "e",
            "b:x:1000:1000::/home/b:/bin/sh\nroot:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        let lib = parse_passwd("l", "b:x:5:5::/:/bin/false\nbin:x:2:2::/bin:/bin/false\n").unwrap();
        let a = Accounts::merge(etc, lib, vec![], vec![]);
        let names: Vec<_> = a.users.iter().map(|u| (u.name.as_str(), u.uid)).collect();
        assert_eq!(names, vec![("root", 0), ("bin", 2), ("b", 1000)]);
        assert_eq!(a.user_name(1000), Some("b"));
        assert_eq!(a.user_name(5), None);
    }
}
