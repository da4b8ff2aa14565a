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
//! [`super::words::escape_word`] does.

use std::collections::BTreeSet;

use super::passwd::Accounts;
use super::words::{escape_word, split_words};

pub use super::parse_error::ParseError;

/// What a set of sysusers.d files declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub users: BTreeSet<String>,
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
                .map(|w| String::from_utf8_lossy(&w).into_owned())
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

/// A problem found while generating lines, reported as a finding by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The user's primary gid has no group entry: the machine cannot reproduce it.
    MissingPrimaryGroup { user: String, gid: u32 },
}

/// The lines declaring every account in `accounts` that `declared` does not: `g` lines by
/// gid, then `u` lines by uid, then `m` lines sorted by group and user.
pub fn lines_for(accounts: &Accounts, declared: &Declared) -> (Vec<String>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for g in &accounts.groups {
        if !declared.groups.contains(&g.name) {
            out.push(format!("g {} {}", escape_word(g.name.as_bytes()), g.gid));
        }
    }
    for u in &accounts.users {
        if declared.users.contains(&u.name) {
            continue;
        }
        let id = if accounts.groups.iter().any(|g| g.gid == u.gid) {
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
            if accounts.has_user(m) && !declared.members.contains(&(m.clone(), g.name.clone())) {
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
    use crate::build::passwd::{parse_group, parse_passwd};

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
