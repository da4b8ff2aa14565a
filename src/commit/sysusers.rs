//! sysusers.d(5): which users, groups and memberships an image already declares, and the lines
//! that declare the rest, so that machines which already run the OS get the build's accounts.
//!
//! Written lines, groups first so that every user's primary group exists when systemd-sysusers
//! creates the user (systemd 252 refuses `u name 100:101` when GID 101 does not exist):
//!
//! ```text
//! g _chrony 101
//! u _chrony 100:101 "Chrony daemon" /var/lib/chrony /usr/sbin/nologin
//! u builder 1500:1500 - /var/home/builder /bin/bash
//! m alice sudo
//! ```
//!
//! Ids are the ones the build allocated: files in /usr may be owned by them, so a machine must
//! get exactly those. `-` stands for an empty field; fields with blanks or quotes are quoted as
//! [`super::words::escape_word`] does, and `%` is doubled (systemd-sysusers expands specifiers
//! in every field; reading back undoes it).
//!
//! # What cannot be declared
//! systemd-sysusers 252 skips, with a message but exit status 0, a line whose name is not
//! [`valid_name`] (letters, digits, `_`, `-`; not starting with a digit or `-`; at most 31
//! bytes), and gives a user whose uid another user already has a new uid. Such accounts are
//! never written; each is a [`Problem`] the caller reports as an error naming it and why.

use std::collections::BTreeSet;

use super::passwd::Accounts;
use super::words::{escape_word, split_words};

pub use super::parse_error::ParseError;

/// What a set of sysusers.d files declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// User names declared.
    pub users: BTreeSet<String>,
    /// Group names declared.
    pub groups: BTreeSet<String>,
    /// (user, group) pairs from `m` lines.
    pub members: BTreeSet<(String, String)>,
}

impl Declared {
    /// Add the declarations of one file.
    pub fn add_file(&mut self, file: &str, text: &[u8]) -> Result<(), ParseError> {
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| ParseError {
                file: file.into(),
                line: i + 1,
                reason,
            };
            let (w, _) = split_words(line.as_bytes(), 6).map_err(|e| err(e.to_string()))?;
            let w: Vec<String> = w
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).replace("%%", "%"))
                .collect();
            if w.len() < 2 {
                return Err(err("expected at least a type and a name".into()));
            }
            match w[0].trim_end_matches('!') {
                "u" => {
                    self.users.insert(w[1].clone());
                    // `u name` creates a same-named group unless the id field names one (`uid:gid`).
                    let id = w.get(2).map(String::as_str).unwrap_or("-");
                    if !id.contains(':') {
                        self.groups.insert(w[1].clone());
                    }
                }
                "g" => {
                    self.groups.insert(w[1].clone());
                }
                "m" => {
                    let group = w
                        .get(2)
                        .ok_or_else(|| err("`m` needs a user and a group".into()))?;
                    self.members.insert((w[1].clone(), group.clone()));
                }
                "r" => {}
                other => return Err(err(format!("unknown line type {other:?}"))),
            }
        }
        Ok(())
    }
}

fn word_or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        escape_word(s.as_bytes())
    }
}

/// Is `name` a user or group name systemd-sysusers 252 accepts? (Its strict rule: checked
/// against the real tool, see the module doc.)
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 31
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// A problem found while generating lines, reported as a finding by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The user's primary gid has no group entry: the machine cannot reproduce it.
    MissingPrimaryGroup {
        /// The user.
        user: String,
        /// Its primary gid.
        gid: u32,
    },
    /// Not a name systemd-sysusers accepts: not written.
    InvalidName {
        /// `user` or `group`.
        kind: &'static str,
        /// The name refused.
        name: String,
    },
    /// The id is already another account's: systemd-sysusers would allocate another one, so
    /// it is not written.
    SharedId {
        /// `user` or `group`.
        kind: &'static str,
        /// The account not written.
        name: String,
        /// The id both claim.
        id: u32,
        /// The account that has it already.
        other: String,
    },
    /// The user's primary group is one that cannot be declared: not written.
    PrimaryGroupNotDeclared {
        /// The user.
        user: String,
        /// Its primary group.
        group: String,
    },
}

impl Problem {
    /// The account concerned and why machines that already run the OS will not have it as the
    /// image does.
    pub fn message(&self) -> String {
        match self {
            Problem::MissingPrimaryGroup { user, gid } => format!("user {user:?} has primary gid {gid}, which no group in /etc/group has; machines will give it a group of its own id"),
            Problem::InvalidName { kind, name } => format!("{kind} {name:?} is not a name systemd-sysusers accepts (letters, digits, '_' and '-', not starting with a digit or '-', at most 31 bytes): it would skip the line, so no line was written and machines that already run the OS will not get this {kind} (new installs have it from /etc)"),
            Problem::SharedId { kind, name, id, other } => format!("{kind} {name:?} has id {id}, which {other:?} already has: systemd-sysusers would give {name:?} another id, so no line was written and machines that already run the OS will not get this {kind}"),
            Problem::PrimaryGroupNotDeclared { user, group } => format!("user {user:?} has primary group {group:?}, which cannot be declared (see its own finding), so no line was written and machines that already run the OS will not get this user"),
        }
    }
}

/// The lines declaring every account in `accounts` that `declared` does not: `g` lines by
/// gid, then `u` lines by uid, then `m` lines sorted by group and user. Accounts that cannot be
/// declared (see the module doc) are left out and returned as problems.
pub fn lines_for(accounts: &Accounts, declared: &Declared) -> (Vec<String>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut skipped_groups = BTreeSet::new();
    let mut skipped_users = BTreeSet::new();
    for g in &accounts.groups {
        let first = accounts.group_name(g.gid).unwrap_or(&g.name);
        if declared.groups.contains(&g.name) {
            continue;
        }
        if !valid_name(&g.name) {
            problems.push(Problem::InvalidName {
                kind: "group",
                name: g.name.clone(),
            });
        } else if first != g.name {
            problems.push(Problem::SharedId {
                kind: "group",
                name: g.name.clone(),
                id: g.gid,
                other: first.into(),
            });
        } else {
            out.push(format!("g {} {}", escape_word(g.name.as_bytes()), g.gid));
            continue;
        }
        skipped_groups.insert(g.name.clone());
    }
    for u in &accounts.users {
        let first = accounts.user_name(u.uid).unwrap_or(&u.name);
        if declared.users.contains(&u.name) {
            continue;
        }
        let primary = accounts
            .group_name(u.gid)
            .and_then(|n| accounts.groups.iter().find(|g| g.name == n));
        let problem = if !valid_name(&u.name) {
            Some(Problem::InvalidName {
                kind: "user",
                name: u.name.clone(),
            })
        } else if first != u.name {
            Some(Problem::SharedId {
                kind: "user",
                name: u.name.clone(),
                id: u.uid,
                other: first.into(),
            })
        } else {
            primary
                .filter(|g| skipped_groups.contains(&g.name) && !declared.groups.contains(&g.name))
                .map(|g| Problem::PrimaryGroupNotDeclared {
                    user: u.name.clone(),
                    group: g.name.clone(),
                })
        };
        if let Some(p) = problem {
            problems.push(p);
            skipped_users.insert(u.name.clone());
            continue;
        }
        let id = if primary.is_some() {
            format!("{}:{}", u.uid, u.gid)
        } else {
            problems.push(Problem::MissingPrimaryGroup {
                user: u.name.clone(),
                gid: u.gid,
            });
            u.uid.to_string()
        };
        out.push(format!(
            "u {} {} {} {} {}",
            escape_word(u.name.as_bytes()),
            id,
            word_or_dash(&u.gecos),
            word_or_dash(&u.home),
            word_or_dash(&u.shell)
        ));
    }
    let mut members = BTreeSet::new();
    for g in &accounts.groups {
        for m in &g.members {
            // Only memberships of users the image has; a stale member name creates nothing.
            if accounts.has_user(m)
                && !skipped_users.contains(m)
                && !skipped_groups.contains(&g.name)
                && !declared.members.contains(&(m.clone(), g.name.clone()))
            {
                members.insert((g.name.clone(), m.clone()));
            }
        }
    }
    for (group, user) in members {
        out.push(format!(
            "m {} {}",
            escape_word(user.as_bytes()),
            escape_word(group.as_bytes())
        ));
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::passwd::{parse_group, parse_passwd};

    fn accounts(passwd: &str, group: &str) -> Accounts {
        Accounts::merge(
            parse_passwd("p", passwd).unwrap(),
            vec![],
            parse_group("g", group).unwrap(),
            vec![],
        )
    }

    #[test]
    fn declared_from_files() {
        let mut d = Declared::default();
        d.add_file(
            "basic.conf",
            b"# c\ng adm 4 -\nu root 0 \"Super User\" /root\nu foo 100:adm\nm alice sudo\nr - 500-900\nu! bar -\n",
        )
        .unwrap();
        assert!(d.users.contains("root") && d.users.contains("foo") && d.users.contains("bar"));
        assert!(d.groups.contains("root") && d.groups.contains("adm") && d.groups.contains("bar"));
        assert!(
            !d.groups.contains("foo"),
            "u foo 100:adm creates no group foo"
        );
        assert!(d.members.contains(&("alice".into(), "sudo".into())));
        let e = d.add_file("x.conf", b"z foo\n").unwrap_err();
        assert_eq!(e.to_string(), "x.conf:1: unknown line type \"z\"");
    }

    #[test]
    fn lines_for_undeclared_accounts_groups_first() {
        let a = accounts(
            "root:x:0:0:root:/root:/bin/bash\n_chrony:x:100:101:Chrony daemon,,,:/var/lib/chrony:/usr/sbin/nologin\nalice:x:1000:1000:Alice \"A\":/var/home/alice:/bin/bash\nnobody:x:65534:65534::/nonexistent:\n",
            "root:x:0:\nsudo:x:27:alice,ghost\n_chrony:x:101:\nalice:x:1000:\n",
        );
        let mut d = Declared::default();
        d.add_file("basic.conf", b"u root 0\ng sudo 27\n").unwrap();
        let (lines, problems) = lines_for(&a, &d);
        assert_eq!(
            lines,
            vec![
                "g _chrony 101",
                "g alice 1000",
                "u _chrony 100:101 \"Chrony daemon,,,\" /var/lib/chrony /usr/sbin/nologin",
                "u alice 1000:1000 \"Alice \\\"A\\\"\" /var/home/alice /bin/bash",
                "u nobody 65534 - /nonexistent -",
                "m alice sudo",
            ]
        );
        assert_eq!(
            problems,
            vec![Problem::MissingPrimaryGroup {
                user: "nobody".into(),
                gid: 65534
            }]
        );
    }

    #[test]
    fn accounts_sysusers_cannot_create_are_problems_not_lines() {
        let a = accounts(
            "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nmy user:x:1000:1000::/:/bin/sh\npc%t:x:1001:1001::/:/bin/sh\nok:x:1002:1003::/:/bin/sh\nbadgrp:x:1004:1004::/:/bin/sh\n",
            "root:x:0:\nmy user:x:1000:\npc%t:x:1001:\nok:x:1003:\n9grp:x:1004:ok\nalias:x:1003:\n",
        );
        let mut d = Declared::default();
        d.add_file("basic.conf", b"u root 0\n").unwrap();
        let (lines, problems) = lines_for(&a, &d);
        assert_eq!(lines, vec!["g ok 1003", "u ok 1002:1003 - / /bin/sh"]);
        let msgs: Vec<String> = problems.iter().map(Problem::message).collect();
        for want in [
            "group \"my user\" is not a name",
            "group \"pc%t\" is not a name",
            "group \"9grp\" is not a name",
            "group \"alias\" has id 1003, which \"ok\" already has",
            "user \"toor\" has id 0, which \"root\" already has",
            "user \"my user\" is not a name",
            "user \"pc%t\" is not a name",
            "user \"badgrp\" has primary group \"9grp\"",
        ] {
            assert!(
                msgs.iter().any(|m| m.starts_with(want)),
                "{want}: {msgs:#?}"
            );
        }
        assert_eq!(problems.len(), 8, "{msgs:#?}");
        assert!(valid_name("_chrony") && valid_name("a-b_c") && valid_name(&"a".repeat(31)));
        for bad in [
            "",
            "9a",
            "-a",
            "a b",
            "a%b",
            "a.b",
            "a$",
            "é",
            &"a".repeat(32),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn percent_is_undone_on_read_back() {
        let mut d = Declared::default();
        d.add_file("x.conf", b"u a%%b 5 \"100%% gecos\"\n").unwrap();
        assert!(d.users.contains("a%b"), "{d:?}");
    }

    #[test]
    fn generated_lines_are_read_back_as_declared() {
        let a = accounts(
            "svc:x:998:997:With space:/var/lib/svc:/bin/false\n",
            "svc:x:997:\nwheel:x:10:svc\n",
        );
        let (lines, _) = lines_for(&a, &Declared::default());
        let mut d = Declared::default();
        d.add_file("ours.conf", lines.join("\n").as_bytes())
            .unwrap();
        assert_eq!(lines_for(&a, &d).0, Vec::<String>::new());
    }
}
