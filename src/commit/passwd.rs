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
//! names and ids resolved here decide file ownership in the image, so guessing is not an option;
//! the `*_lines` parsers skip such a line and return its error, so that the other accounts are
//! still handled. Where a name appears twice, the first entry is the account (glibc's
//! `getpwnam` reads the file top down and stops at the first match) and the later one is
//! reported by [`Accounts::merge`]. Ids are always taken from these files, never from the
//! host's NSS.

use std::collections::BTreeMap;

pub use super::parse_error::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
/// One line of /etc/passwd.
pub struct User {
    /// Where the entry is: (file, line).
    pub at: (String, usize),
    /// Login name (first field).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Comment field.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// One line of /etc/group.
pub struct Group {
    /// Where the entry is: (file, line).
    pub at: (String, usize),
    /// Group name (first field).
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members (fourth field, comma-separated).
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

/// Parse passwd(5) text, skipping malformed lines: their errors are returned beside the users.
pub fn parse_passwd_lines(file: &str, text: &str) -> (Vec<User>, Vec<ParseError>) {
    split_results(records(text).map(|(line, f)| {
        if f.len() != 7 {
            return Err(ParseError {
                file: file.into(),
                line,
                reason: format!("expected 7 fields separated by ':', found {}", f.len()),
            });
        }
        Ok(User {
            at: (file.into(), line),
            name: f[0].to_string(),
            uid: parse_id(file, line, "uid", f[2])?,
            gid: parse_id(file, line, "gid", f[3])?,
            gecos: f[4].to_string(),
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    }))
}

/// Parse group(5) text, skipping malformed lines: their errors are returned beside the groups.
pub fn parse_group_lines(file: &str, text: &str) -> (Vec<Group>, Vec<ParseError>) {
    split_results(records(text).map(|(line, f)| {
        if f.len() != 4 {
            return Err(ParseError {
                file: file.into(),
                line,
                reason: format!("expected 4 fields separated by ':', found {}", f.len()),
            });
        }
        Ok(Group {
            at: (file.into(), line),
            name: f[0].to_string(),
            gid: parse_id(file, line, "gid", f[2])?,
            members: f[3]
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect(),
        })
    }))
}

fn split_results<T>(it: impl Iterator<Item = Result<T, ParseError>>) -> (Vec<T>, Vec<ParseError>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for r in it {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

/// Everything, or the first malformed line as the error.
fn strict<T>((entries, bad): (Vec<T>, Vec<ParseError>)) -> Result<Vec<T>, ParseError> {
    match bad.into_iter().next() {
        None => Ok(entries),
        Some(e) => Err(e),
    }
}

/// Parse passwd(5) text; the first malformed line is the error.
pub fn parse_passwd(file: &str, text: &str) -> Result<Vec<User>, ParseError> {
    strict(parse_passwd_lines(file, text))
}

/// Parse group(5) text; the first malformed line is the error.
pub fn parse_group(file: &str, text: &str) -> Result<Vec<Group>, ParseError> {
    strict(parse_group_lines(file, text))
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
/// /usr/lib (nss-altfiles). Where a name is in both, /etc wins, as with nss `files altfiles`;
/// where a name is twice in one file, the first entry wins and the later one is listed in
/// `duplicates` as an error naming both lines.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// /etc/passwd entries, first of each name kept.
    pub users: Vec<User>,
    /// /etc/group entries, first of each name kept.
    pub groups: Vec<Group>,
    /// Later lines repeating a name (ignored, as glibc ignores them).
    pub duplicates: Vec<ParseError>,
}

/// Keep the first entry of each name (files in lookup order); the others are reported.
fn first_wins<T>(
    entries: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (&str, &(String, usize)),
    what: &str,
    dups: &mut Vec<ParseError>,
) -> Vec<T> {
    let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut out = Vec::new();
    for e in entries {
        let (name, at) = key(&e);
        match seen.get(name) {
            Some(first) if first.0 == at.0 => dups.push(ParseError::new(
                &at.0,
                at.1,
                format!(
                    "{what} {name:?} is already defined on line {}; the first entry is the one the system uses, this one is ignored",
                    first.1
                ),
            )),
            Some(_) => {} // /etc overrides /usr/lib: the normal case with nss-altfiles
            None => {
                seen.insert(name.to_string(), at.clone());
                out.push(e);
            }
        }
    }
    out
}

/// Where an entry comes in NSS lookup order: /etc before /usr/lib, then by line.
fn lookup_order(at: &(String, usize)) -> (bool, usize) {
    (at.0.starts_with("/usr/"), at.1)
}

impl Accounts {
    /// Build from the already-parsed files, /etc first.
    pub fn merge(
        etc_users: Vec<User>,
        lib_users: Vec<User>,
        etc_groups: Vec<Group>,
        lib_groups: Vec<Group>,
    ) -> Self {
        let mut duplicates = Vec::new();
        let mut users = first_wins(
            etc_users.into_iter().chain(lib_users),
            |u| (u.name.as_str(), &u.at),
            "user",
            &mut duplicates,
        );
        let mut groups = first_wins(
            etc_groups.into_iter().chain(lib_groups),
            |g| (g.name.as_str(), &g.at),
            "group",
            &mut duplicates,
        );
        users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
        groups.sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
        Accounts {
            users,
            groups,
            duplicates,
        }
    }

    /// The user name for `uid`, as the image sees it: the first entry with that uid in lookup
    /// order (/etc/passwd top down, then /usr/lib/passwd), as glibc's `getpwuid` finds it.
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .filter(|u| u.uid == uid)
            .min_by_key(|u| lookup_order(&u.at))
            .map(|u| u.name.as_str())
    }

    /// The group name for `gid`, as `getgrgid` finds it (see [`Accounts::user_name`]).
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .filter(|g| g.gid == gid)
            .min_by_key(|g| lookup_order(&g.at))
            .map(|g| g.name.as_str())
    }

    /// Whether /etc/passwd has this user.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.name == name)
    }

    /// Whether /etc/group has this group.
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
    fn bad_lines_are_skipped_and_duplicates_reported_first_wins() {
        let (u, bad) = parse_passwd_lines(
            "/etc/passwd",
            "root:x:0:0::/root:/bin/sh\nbroken line\nalice:x:1000:1000::/home/alice:/bin/sh\nalice:x:0:0::/:/bin/sh\nbob:x:NaN:1::/:/bin/sh\n",
        );
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 2);
        assert_eq!(
            bad[1].to_string(),
            "/etc/passwd:5: uid \"NaN\" is not a number"
        );
        let a = Accounts::merge(u, vec![], vec![], vec![]);
        assert_eq!(a.user_name(1000), Some("alice"), "the first alice wins");
        assert_eq!(a.users.len(), 2);
        assert_eq!(a.duplicates.len(), 1);
        assert!(
            a.duplicates[0]
                .to_string()
                .starts_with("/etc/passwd:4: user \"alice\" is already defined on line 3"),
            "{}",
            a.duplicates[0]
        );
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
