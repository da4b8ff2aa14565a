//! Carry out a [`Plan`]: each change is done on its own; one that fails becomes an error finding
//! naming its path, and the others still run.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use rustix::fs::AtFlags;

use super::fsops::{copy_tree, move_entry, remove_tree};
use super::passwd::drop_shadow_entries;
use super::plan::{Change, Plan, FACTORY};
use super::report::{Action, Finding, Severity};
use super::rootfs::{
    create_dir_all, display, open_path_nofollow, read_optional, split, stat, write_atomic, Root,
};

/// [`describe`], plus for a file it would write the exact lines (comments left out), as
/// `--dry-run` shows them.
pub fn describe_planned(c: &Change) -> Action {
    let mut a = describe(c);
    if let Change::Write { contents, .. } = c {
        a.lines = contents
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
    }
    a
}

/// Describe a change as the action it is (for `--dry-run` and for the report).
pub fn describe(c: &Change) -> Action {
    match c {
        Change::Remove { path } => Action {
            action: "remove",
            path: display(path),
            detail: String::new(),
            lines: vec![],
        },
        Change::Relocate {
            from,
            to,
            link,
            replace,
        } => Action {
            action: "move",
            path: display(from),
            detail: format!(
                "to {}{}, link {:?} left in its place",
                display(to),
                if *replace {
                    " (replacing the copy from an earlier commit)"
                } else {
                    ""
                },
                link
            ),
            lines: vec![],
        },
        Change::Factory { path } => Action {
            action: "factory-copy",
            path: display(path),
            detail: format!("to {}", display(&Path::new(FACTORY).join(path))),
            lines: vec![],
        },
        Change::Write { path, detail, .. } => Action {
            action: "write",
            path: display(path),
            detail: detail.clone(),
            lines: vec![],
        },
        Change::DropShadow { path, names } => Action {
            action: "drop-shadow-entries",
            path: display(path),
            detail: format!("no account for {}", names.join(", ")),
            lines: vec![],
        },
    }
}

fn open_parent<'a>(root: &Root, rel: &'a Path) -> io::Result<(cap_std::fs::Dir, &'a OsStr)> {
    let (parent, name) = split(rel);
    let dir = open_path_nofollow(&root.dir, parent)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", display(parent)),
        )
    })?;
    Ok((dir, name))
}

fn apply_one(root: &Root, c: &Change) -> io::Result<()> {
    match c {
        Change::Remove { path } => {
            let (dir, name) = open_parent(root, path)?;
            let kept = remove_tree(root, &dir, name)?;
            if !kept.is_empty() {
                let shown = display(path);
                tracing::info!("kept mount points below {shown}: {kept:?}");
            }
            Ok(())
        }
        Change::Relocate {
            from,
            to,
            link,
            replace,
        } => {
            let (src_dir, src_name) = open_parent(root, from)?;
            let (to_parent, to_name) = split(to);
            let dst_dir = create_dir_all(&root.dir, to_parent, 0o755)?;
            if *replace {
                remove_tree(root, &dst_dir, to_name)?;
            }
            move_entry(root, &src_dir, src_name, &dst_dir, to_name)?;
            rustix::fs::symlinkat(link.as_os_str(), &src_dir, src_name)?;
            Ok(())
        }
        Change::Factory { path } => {
            let (src_dir, src_name) = open_parent(root, path)?;
            let factory = Path::new(FACTORY).join(path);
            let (fparent, fname) = split(&factory);
            let dst_dir = create_dir_all(&root.dir, fparent, 0o755)?;
            if stat(&dst_dir, fname)?.is_some() {
                remove_tree(root, &dst_dir, fname)?;
            }
            // A hard link keeps owner, mode and xattrs and costs nothing; where the kernel
            // refuses (overlay lower layers on some kernels, link limits), copy.
            match rustix::fs::linkat(&src_dir, src_name, &dst_dir, fname, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(_) => copy_tree(&src_dir, src_name, &dst_dir, fname),
            }
        }
        Change::Write { path, contents, .. } => {
            let (parent, name) = split(path);
            let dir = create_dir_all(&root.dir, parent, 0o755)?;
            write_atomic(&dir, name, contents, 0o644, None)
        }
        Change::DropShadow { path, names } => {
            let (dir, name) = open_parent(root, path)?;
            let m = stat(&dir, name)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            let text = read_optional(&root.dir, path)?.unwrap_or_default();
            let (out, dropped) = drop_shadow_entries(&String::from_utf8_lossy(&text), &|n| {
                !names.iter().any(|x| x == n)
            });
            if !dropped.is_empty() {
                write_atomic(&dir, name, out.as_bytes(), m.perm, Some((m.uid, m.gid)))?;
            }
            Ok(())
        }
    }
}

/// Apply every change of the plan in order; returns what was done and what failed.
pub fn apply(root: &Root, plan: &Plan) -> (Vec<Action>, Vec<Finding>) {
    let mut actions = Vec::new();
    let mut failures = Vec::new();
    for c in &plan.changes {
        match apply_one(root, c) {
            Ok(()) => actions.push(describe(c)),
            Err(e) => failures.push(Finding {
                check: "commit",
                severity: Severity::Error,
                paths: vec![display(c.path())],
                message: format!(
                    "could not {} {}: {e}",
                    describe(c).action,
                    display(c.path())
                ),
                fix: "see the message; nothing else was left half-done for this path".into(),
            }),
        }
    }
    (actions, failures)
}
