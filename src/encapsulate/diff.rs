//! Comparing two commits: files and directories added, removed and modified.
//!
//! A file is modified when its content object differs (content, owner, mode or xattrs); a
//! directory when its dirmeta differs (owner, mode, xattrs). A path that changes between file
//! and directory is removed and added. Paths are absolute (`/usr/bin/sh`) and sorted.

use serde::Serialize;

use crate::ostree::repo::RepoError;
use crate::ostree::tree::{Dir, Node};

use super::cli::DiffArgs;
use crate::ostree::commit;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
/// What differs between two commits (paths without leading `/`, sorted).
pub struct Diff {
    /// Files only in the second.
    pub added_files: Vec<String>,
    /// Files only in the first.
    pub removed_files: Vec<String>,
    /// Files in both with different content or metadata.
    pub modified_files: Vec<String>,
    /// Directories only in the second.
    pub added_dirs: Vec<String>,
    /// Directories only in the first.
    pub removed_dirs: Vec<String>,
    /// Directories in both with different metadata.
    pub modified_dirs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
/// Why two commits could not be compared.
pub enum DiffError {
    #[error(transparent)]
    /// The repository could not be read.
    Repo(#[from] RepoError),
    #[error(transparent)]
    /// A commit could not be read.
    Commit(#[from] commit::CommitError),
    #[error("{path:?} is not a directory in commit {commit}")]
    /// The directory given is not in a commit.
    NoSubdir {
        /// The directory.
        path: String,
        /// The commit.
        commit: String,
    },
}

fn join(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

fn add_all(out: &mut Vec<String>, dirs: &mut Vec<String>, path: &str, node: &Node) {
    match node {
        Node::File { .. } => out.push(path.to_string()),
        Node::Dir(d) => {
            dirs.push(path.to_string());
            for (n, c) in &d.children {
                add_all(out, dirs, &join(path, n), c);
            }
        }
    }
}

/// Compare two loaded trees; `base` is the path of both roots.
pub fn diff_trees(from: &Dir, to: &Dir, base: &str) -> Diff {
    let mut d = Diff::default();
    diff_dir(&mut d, from, to, base);
    for v in [
        &mut d.added_files,
        &mut d.removed_files,
        &mut d.modified_files,
        &mut d.added_dirs,
        &mut d.removed_dirs,
        &mut d.modified_dirs,
    ] {
        v.sort();
    }
    d
}

fn diff_dir(d: &mut Diff, from: &Dir, to: &Dir, path: &str) {
    for (name, a) in &from.children {
        let p = join(path, name);
        match (a, to.children.get(name)) {
            (_, None) => add_all(&mut d.removed_files, &mut d.removed_dirs, &p, a),
            (Node::File { csum: x, .. }, Some(Node::File { csum: y, .. })) => {
                if x != y {
                    d.modified_files.push(p);
                }
            }
            (Node::Dir(x), Some(Node::Dir(y))) => {
                if x.meta != y.meta {
                    d.modified_dirs.push(p.clone());
                }
                diff_dir(d, x, y, &p);
            }
            (a, Some(b)) => {
                add_all(&mut d.removed_files, &mut d.removed_dirs, &p, a);
                add_all(&mut d.added_files, &mut d.added_dirs, &p, b);
            }
        }
    }
    for (name, b) in &to.children {
        if !from.children.contains_key(name) {
            add_all(&mut d.added_files, &mut d.added_dirs, &join(path, name), b);
        }
    }
}

/// Compare two commits, optionally only below `subdir`.
pub fn diff_commits(
    repo: &ostree::Repo,
    from: &str,
    to: &str,
    subdir: Option<&str>,
) -> Result<Diff, DiffError> {
    let parts: Vec<&str> = subdir
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let base = if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    };
    let load = |rev: &str| -> Result<Dir, DiffError> {
        let c = commit::resolve(repo, rev)?;
        let root = crate::ostree::commit::load_commit_tree(repo, &c)?;
        if parts.is_empty() {
            return Ok(root);
        }
        root.lookup_dir(&parts)
            .cloned()
            .ok_or_else(|| DiffError::NoSubdir {
                path: base.clone(),
                commit: c,
            })
    };
    Ok(diff_trees(&load(from)?, &load(to)?, &base))
}

impl Diff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }

    /// Text form: one line per path, prefixed `A`, `D` or `M` (directories end with `/`).
    pub fn to_text(&self) -> String {
        let mut lines: Vec<(String, char)> = Vec::new();
        for (v, c, dir) in [
            (&self.added_files, 'A', false),
            (&self.removed_files, 'D', false),
            (&self.modified_files, 'M', false),
            (&self.added_dirs, 'A', true),
            (&self.removed_dirs, 'D', true),
            (&self.modified_dirs, 'M', true),
        ] {
            for p in v {
                lines.push((if dir { format!("{p}/") } else { p.clone() }, c));
            }
        }
        lines.sort();
        let mut s = String::new();
        for (p, c) in lines {
            s.push_str(&format!("{c} {p:?}\n"));
        }
        s
    }
}

/// `diff`: print the differences; returns the exit code.
pub fn run(a: &DiffArgs) -> anyhow::Result<u8> {
    let repo = crate::ostree::repo::open_repo(&a.repo)?;
    let d = diff_commits(&repo, &a.from, &a.to, a.subdir.as_deref())?;
    if a.json {
        let mut v = serde_json::to_value(&d)?;
        v["schema_version"] = crate::commit::report::SCHEMA_VERSION.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", d.to_text());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ostree::tree::FileKind;

    fn file(b: u8) -> Node {
        Node::File {
            csum: [b; 32],
            kind: FileKind::Regular,
        }
    }

    fn dir(meta: u8, children: Vec<(&str, Node)>) -> Dir {
        let mut d = Dir::new([meta; 32]);
        for (n, c) in children {
            d.children.insert(n.to_string(), c);
        }
        d
    }

    #[test]
    fn all_kinds() {
        let from = dir(
            0,
            vec![
                ("same", file(1)),
                ("changed", file(2)),
                ("gone", file(3)),
                ("olddir", Node::Dir(dir(0, vec![("x", file(4))]))),
                ("chmod", Node::Dir(dir(0, vec![]))),
                ("becomes-dir", file(5)),
            ],
        );
        let to = dir(
            0,
            vec![
                ("same", file(1)),
                ("changed", file(9)),
                ("new", file(6)),
                ("chmod", Node::Dir(dir(7, vec![]))),
                ("becomes-dir", Node::Dir(dir(0, vec![("y", file(8))]))),
            ],
        );
        let d = diff_trees(&from, &to, "");
        assert_eq!(d.added_files, ["/becomes-dir/y", "/new"]);
        assert_eq!(d.removed_files, ["/becomes-dir", "/gone", "/olddir/x"]);
        assert_eq!(d.modified_files, ["/changed"]);
        assert_eq!(d.added_dirs, ["/becomes-dir"]);
        assert_eq!(d.removed_dirs, ["/olddir"]);
        assert_eq!(d.modified_dirs, ["/chmod"]);
        assert!(diff_trees(&from, &from, "").is_empty());
        assert!(d.to_text().contains("M \"/changed\"\n"));
    }
}
