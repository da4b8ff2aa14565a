//! What `commit` changes, worked out without changing anything.
//!
//! [`plan`] reads the image and returns a list of [`Change`]s plus findings. `commit` applies
//! the changes ([`super::apply`]); `commit --dry-run` prints them; `lint` turns the pending ones
//! into findings. Because the plan is computed from the tree as it is, a second `commit` finds
//! nothing to do, and `lint` after `commit` finds no /var or account work left.
//!
//! The policies, with the exact lines written:
//! - **Clean**: the contents of /tmp, /var/tmp, /var/cache, /var/lib/apt/lists and /run; regular
//!   files (and links) under /var/log. Mount points and other filesystems are never touched.
//! - **Package databases**: /var/lib/dpkg and /var/lib/rpm (where /usr/lib/sysimage/rpm does not
//!   exist) move to `/usr/lib/sysimage/<name>`:
//!   `L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg`. `L+`, because a machine's /var may
//!   still have an old copy of the database as a directory, which only describes an old /usr
//!   (docs/commit.md, "Package databases on machines").
//! - **/opt** (where /opt resolves to /var/opt): each entry moves to `/usr/lib/opt/<name>`:
//!   `L /var/opt/<name> - - - - ../../usr/lib/opt/<name>`. Entries that are symlinks stay links.
//! - **/usr/local** (where it resolves to /var/usrlocal): every file moves to the same place under
//!   /usr/lib/usrlocal with an `L` line for it; directories get `d` lines, so /usr/local/bin and
//!   the rest stay writable on the machine.
//! - **The rest of /var**: `d` for directories (mode, owner names from the image's own passwd
//!   and group), `L` for symlinks, and for regular files a copy in /usr/share/factory/var (a hard
//!   link where possible: ostree stores the content once) with
//!   `C /var/<path> - - - - /usr/share/factory/var/<path>`. The file stays in /var too, so later
//!   RUN steps and `podman run` still see it. Paths that a tmpfiles.d file in /usr/lib, /etc or
//!   /run already declares (after resolving symlinked parents: /root/x is /var/roothome/x) get
//!   no line. All lines go to [`TMPFILES_CONF`], regenerated from /var on every run. A path no
//!   line can carry ([`tmpfiles::check_path`]) gets none, nor does anything below it: an error
//!   finding names it. The walk is [`walk`]: any depth, any fan-out, links never followed.
//! - **Accounts**: every user, group and supplementary membership in /etc/passwd, /etc/group
//!   (and /usr/lib/passwd, /usr/lib/group) that no other sysusers.d file declares, in
//!   [`SYSUSERS_CONF`] (format in [`super::sysusers`]); accounts systemd-sysusers would not
//!   create as the image has them, malformed lines and duplicate names are findings. Entries in
//!   /etc/shadow or /etc/gshadow without a passwd or group entry are dropped: systemd-sysusers
//!   fails on them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::lints::name;
use super::passwd::{self, Accounts};
use super::report::{Finding, Severity};
use super::rootfs::{
    display, lexical_target, list, open_path_nofollow, read_link, read_optional, stat, stat_path,
    walk, Entry, Kind, Meta, Root, Visitor,
};
use super::sysusers::{self, Declared, Problem};
use super::tmpfiles::{self, Line, LineSet};

/// The tmpfiles.d file `commit` writes for /var content (relative to the root).
pub const TMPFILES_CONF: &str = "usr/lib/tmpfiles.d/ostree-container-var.conf";
/// The sysusers.d file `commit` writes for accounts (relative to the root).
pub const SYSUSERS_CONF: &str = "usr/lib/sysusers.d/ostree-container-users.conf";
/// Where `commit` keeps a copy of /var files, for tmpfiles.d `C` lines.
pub const FACTORY: &str = "usr/share/factory";

const TMPFILES_HEADER: &str = "# Written by `ostree container commit` (ostree-container): the image's /var content, so that\n\
# machines that already run this OS get it too (ostree never updates /var on upgrade).\n\
# Regenerated from /var on every run; do not edit.\n";
const SYSUSERS_HEADER: &str =
    "# Written by `ostree container commit` (ostree-container): the users and groups the image\n\
# build added, with the ids it allocated, so that machines that already run this OS get them.\n\
# Regenerated from /etc/passwd and /etc/group on every run; do not edit.\n";

/// Directories whose contents `commit` removes. apt's package lists are a download cache too
/// (`apt-get update` makes them again), tens of megabytes that would otherwise be copied into
/// /usr/share/factory.
pub const CLEAN_DIRS: &[&str] = &["tmp", "var/tmp", "var/cache", "var/lib/apt/lists", "run"];

#[derive(Debug, Clone, PartialEq, Eq)]
/// One change `commit` makes; [`apply`](super::apply) carries it out.
pub enum Change {
    /// Remove this entry and everything below it (mount points excepted).
    Remove {
        /// Relative to the root.
        path: PathBuf,
    },
    /// Move `from` to `to` (replacing an older `to`), and leave a symlink `from -> link`.
    Relocate {
        /// What is moved, relative to the root.
        from: PathBuf,
        /// Where it goes, relative to the root.
        to: PathBuf,
        /// The symlink target left at `from`.
        link: PathBuf,
        /// Whether an existing `to` is replaced.
        replace: bool,
    },
    /// Hard-link (or copy) the /var file `path` to the same path under /usr/share/factory.
    Factory {
        /// The /var file, relative to the root.
        path: PathBuf,
    },
    /// Write a generated file.
    Write {
        /// The file, relative to the root.
        path: PathBuf,
        /// Its new contents.
        contents: Vec<u8>,
        /// What the report says about it.
        detail: String,
    },
    /// Drop entries without an account from /etc/shadow or /etc/gshadow.
    DropShadow {
        /// /etc/shadow or /etc/gshadow, relative to the root.
        path: PathBuf,
        /// The entries dropped.
        names: Vec<String>,
    },
}

impl Change {
    /// The image path the change is about, for reports and findings.
    pub fn path(&self) -> &Path {
        match self {
            Change::Remove { path }
            | Change::Factory { path }
            | Change::Write { path, .. }
            | Change::DropShadow { path, .. } => path,
            Change::Relocate { from, .. } => from,
        }
    }
}

#[derive(Debug, Default)]
/// What `commit` would do: the changes, and what it found while working them out.
pub struct Plan {
    /// The changes, in the order they are applied.
    pub changes: Vec<Change>,
    /// Problems found while planning, under the names in [`name`].
    pub findings: Vec<Finding>,
    /// /var paths whose tmpfiles.d line is missing or differs from the one written last time.
    pub var_lines_pending: Vec<PathBuf>,
    /// sysusers.d lines for accounts that no sysusers.d file (this tool's included) declares.
    pub accounts_pending: Vec<String>,
}

fn finding(
    check: &'static str,
    severity: Severity,
    paths: Vec<String>,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        check,
        severity,
        paths,
        message,
        fix: fix.into(),
    }
}

fn could_not_check(check: &'static str, e: impl std::fmt::Display) -> Finding {
    finding(
        check,
        Severity::Error,
        vec![],
        format!("could not check: {e}"),
        "see the message",
    )
}

/// A tmpfiles.d or sysusers.d file that does not parse: its declarations are ignored.
fn unreadable_conf(check: &'static str, file: &Path, e: impl std::fmt::Display) -> Finding {
    finding(
        check,
        Severity::Warning,
        vec![display(file)],
        format!(
            "cannot read {}: {e}; its declarations are not taken into account",
            display(file)
        ),
        "fix the line named in the message",
    )
}

fn slash(rel: &Path) -> Vec<u8> {
    let mut v = b"/".to_vec();
    v.extend_from_slice(rel.as_os_str().as_bytes());
    v
}

/// The relative symlink target that leads from a link at `link` to `target` (both relative to
/// the root): one `..` per directory above the link, then the target.
pub fn relative_link(link: &Path, target: &Path) -> PathBuf {
    let depth = link.parent().map(|p| p.components().count()).unwrap_or(0);
    let mut out = PathBuf::new();
    for _ in 0..depth {
        out.push("..");
    }
    out.join(target)
}

/// Read every `*.conf` in the three configuration directories of a systemd tool, in name
/// order, skipping `skip` (this tool's own file). Returns (image path, contents).
fn read_conf_dirs(
    root: &Root,
    sub: &str,
    skip: &str,
    check: &'static str,
    p: &mut Plan,
) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for base in ["usr/lib", "etc", "run"] {
        let dir_rel = Path::new(base).join(sub);
        let Some(dir) = open_path_nofollow(&root.dir, &dir_rel).ok().flatten() else {
            continue;
        };
        for name in list(&dir)? {
            let rel = dir_rel.join(&name);
            if !name.as_bytes().ends_with(b".conf") || rel == Path::new(skip) {
                continue;
            }
            // A link to /dev/null masks a file; other links are followed inside the root.
            let resolved = match root.resolve(&rel, true) {
                Ok(r) => r,
                Err(e) => {
                    p.findings.push(unreadable_conf(check, &rel, e));
                    continue;
                }
            };
            if let Some(text) = read_optional(&root.dir, &resolved).unwrap_or(None) {
                out.push((rel, text));
            }
        }
    }
    Ok(out)
}

/// The image's accounts, or a finding saying why they could not be read at all. Malformed
/// lines and duplicate names are findings pushed to `p`; the other accounts are still read.
pub fn read_accounts(root: &Root, p: &mut Plan) -> Result<Accounts, Finding> {
    let fail = |msg: String| {
        finding(
            name::UNDECLARED_ACCOUNTS,
            Severity::Error,
            vec![],
            format!("could not check: {msg}"),
            "fix the file named in the message",
        )
    };
    let read = |rel: &str| -> Result<String, Finding> {
        let bytes =
            read_optional(&root.dir, Path::new(rel)).map_err(|e| fail(format!("/{rel}: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let mut bad = Vec::new();
    let mut users = |rel: &str| -> Result<_, Finding> {
        let (u, b) = passwd::parse_passwd_lines(&format!("/{rel}"), &read(rel)?);
        bad.extend(b);
        Ok(u)
    };
    let (etc_users, lib_users) = (users("etc/passwd")?, users("usr/lib/passwd")?);
    let mut groups = |rel: &str| -> Result<_, Finding> {
        let (g, b) = passwd::parse_group_lines(&format!("/{rel}"), &read(rel)?);
        bad.extend(b);
        Ok(g)
    };
    let (etc_groups, lib_groups) = (groups("etc/group")?, groups("usr/lib/group")?);
    let accounts = Accounts::merge(etc_users, lib_users, etc_groups, lib_groups);
    for e in &bad {
        p.findings.push(finding(
            name::UNDECLARED_ACCOUNTS,
            Severity::Error,
            vec![e.file.clone()],
            format!("{e}; the line is ignored, so no sysusers.d line declares what it meant to and machines that already run the OS will not have it"),
            "fix or remove the line named",
        ));
    }
    for e in &accounts.duplicates {
        p.findings.push(finding(
            name::UNDECLARED_ACCOUNTS,
            Severity::Warning,
            vec![e.file.clone()],
            e.to_string(),
            "remove the duplicate line",
        ));
    }
    Ok(accounts)
}

/// Work out everything `commit` would do.
pub fn plan(root: &Root) -> Plan {
    let mut p = Plan::default();
    let accounts = match read_accounts(root, &mut p) {
        Ok(a) => Some(a),
        Err(f) => {
            p.findings.push(f);
            None
        }
    };
    if let Err(e) = plan_clean(root, &mut p) {
        p.findings.push(could_not_check(name::TMP_RUN_CONTENT, e));
    }
    match plan_relocations(root, &mut p) {
        Ok(relocated) => {
            if let Err(e) = plan_var(root, &relocated, accounts.as_ref(), &mut p) {
                p.findings.push(could_not_check(name::VAR_CONTENT, e));
            }
        }
        Err(e) => p.findings.push(could_not_check(name::VAR_CONTENT, e)),
    }
    if let Some(a) = &accounts {
        if let Err(e) = plan_accounts(root, a, &mut p) {
            p.findings
                .push(could_not_check(name::UNDECLARED_ACCOUNTS, e));
        }
    }
    p
}

fn plan_clean(root: &Root, p: &mut Plan) -> std::io::Result<()> {
    for d in CLEAN_DIRS {
        let Ok(Some(dir)) = open_path_nofollow(&root.dir, Path::new(d)) else {
            continue; // missing, or a symlink: the api-dirs check reports that
        };
        if stat(&dir, ".")?.is_some_and(|m| root.is_foreign(&m)) {
            continue; // a tmpfs or bind mount: not image content
        }
        for name in list(&dir)? {
            let m = stat(&dir, &name)?;
            if m.is_some_and(|m| !root.is_foreign(&m)) {
                p.changes.push(Change::Remove {
                    path: Path::new(d).join(name),
                });
            }
        }
    }
    // Log files, keeping the directories (packages expect them).
    if let Ok(Some(dir)) = open_path_nofollow(&root.dir, Path::new("var/log")) {
        let mut removes = Vec::new();
        let errors = walk_files(root, &dir, Path::new("var/log"), &mut |rel, _| {
            removes.push(Change::Remove {
                path: rel.to_path_buf(),
            })
        })?;
        p.changes.extend(removes);
        for (rel, e) in errors {
            p.findings
                .push(unreadable_path(name::TMP_RUN_CONTENT, &rel, &e));
        }
    }
    Ok(())
}

/// Call `f` for every non-directory below `dir` (image content only), in name order; paths
/// that could not be read are returned, the rest is still walked.
fn walk_files(
    root: &Root,
    dir: &cap_std::fs::Dir,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &Meta),
) -> std::io::Result<Vec<(PathBuf, std::io::Error)>> {
    struct Files<'a, 'f> {
        root: &'a Root,
        f: &'f mut dyn FnMut(&Path, &Meta),
        errors: Vec<(PathBuf, std::io::Error)>,
    }
    impl Visitor for Files<'_, '_> {
        fn enter(&mut self, e: &Entry) -> bool {
            if self.root.is_foreign(&e.meta) {
                return false;
            }
            if e.meta.kind == Kind::Dir {
                return true;
            }
            (self.f)(e.rel, &e.meta);
            false
        }
        fn error(&mut self, rel: &Path, e: std::io::Error) {
            self.errors.push((rel.to_path_buf(), e));
        }
    }
    let mut v = Files {
        root,
        f,
        errors: Vec::new(),
    };
    walk(dir.try_clone()?, rel, &mut v);
    Ok(v.errors)
}

/// A path a walk could not read: an error finding naming it; the rest was done.
pub fn unreadable_path(check: &'static str, rel: &Path, e: &std::io::Error) -> Finding {
    finding(
        check,
        Severity::Error,
        vec![display(rel)],
        format!("could not read {}: {e}", display(rel)),
        "fix the permissions or remove the path named; everything else was done",
    )
}

/// Does `link` resolve to `target` in the image? A symlink loop (or another resolution error)
/// is a finding naming the path, and the answer is no: the content stays where it is.
fn resolves_to(root: &Root, link: &str, target: &str, p: &mut Plan) -> bool {
    match root.resolve(Path::new(link), true) {
        Ok(r) => r == Path::new(target),
        Err(e) => {
            p.findings.push(finding(
                name::VAR_CONTENT,
                Severity::Warning,
                vec![format!("/{link}")],
                format!("/{link} cannot be resolved ({e}); its content is left where it is, not moved into /usr"),
                "make it a link to the /var directory ostree expects, without a loop",
            ));
            false
        }
    }
}

/// Plans the moves into /usr; returns the /var paths that will be links afterwards, with their
/// targets.
fn plan_relocations(root: &Root, p: &mut Plan) -> std::io::Result<BTreeMap<PathBuf, PathBuf>> {
    let mut links = BTreeMap::new();
    let kind_at = |rel: &Path| stat_path(&root.dir, rel);
    let mut relocate = |p: &mut Plan, from: PathBuf, to: PathBuf, replace: bool| {
        let link = relative_link(&from, &to);
        links.insert(from.clone(), link.clone());
        p.changes.push(Change::Relocate {
            from,
            to,
            link,
            replace,
        });
    };

    for (db, always) in [("dpkg", true), ("rpm", false)] {
        let from = PathBuf::from("var/lib").join(db);
        let to = PathBuf::from("usr/lib/sysimage").join(db);
        let Some(m) = kind_at(&from)? else { continue };
        if m.kind != Kind::Dir || root.is_foreign(&m) {
            continue;
        }
        if kind_at(&to)?.is_some() {
            if always {
                p.findings.push(finding(
                    name::VAR_CONTENT,
                    Severity::Error,
                    vec![display(&from), display(&to)],
                    format!("both {} and {} exist: a step replaced the link to the package database with a directory", display(&from), display(&to)),
                    "merge the two by hand, keep the one in /usr/lib/sysimage, and make /var/lib/<name> a link to it again",
                ));
            }
            continue;
        }
        relocate(p, from, to, false);
    }

    if resolves_to(root, "opt", "var/opt", p) {
        if let Some(dir) = open_path_nofollow(&root.dir, Path::new("var/opt"))? {
            for name in list(&dir)? {
                let Some(m) = stat(&dir, &name)? else {
                    continue;
                };
                let from = Path::new("var/opt").join(&name);
                // A name no tmpfiles.d line can carry stays in /var, where the walk of /var
                // reports it.
                if root.is_foreign(&m) || tmpfiles::check_path(&slash(&from)).is_err() {
                    continue;
                }
                if m.kind == Kind::Symlink {
                    let target = read_link(&dir, &name)?;
                    // Already relocated by an earlier commit: nothing to say.
                    if Path::new(&target)
                        != relative_link(&from, &Path::new("usr/lib/opt").join(&name))
                    {
                        p.findings.push(finding(
                            name::VAR_CONTENT,
                            Severity::Warning,
                            vec![display(&from)],
                            format!("{} is a symlink to {:?}: kept as a link (an L line), not moved into /usr", display(&from), target),
                            "install the software itself under /opt, or ignore this if the link is intended",
                        ));
                    }
                    continue;
                }
                let to = Path::new("usr/lib/opt").join(&name);
                let replace = kind_at(&to)?.is_some();
                relocate(p, from, to, replace);
            }
        }
    }

    if resolves_to(root, "usr/local", "var/usrlocal", p) {
        if let Some(dir) = open_path_nofollow(&root.dir, Path::new("var/usrlocal"))? {
            let mut files = Vec::new();
            let errors = walk_files(root, &dir, Path::new("var/usrlocal"), &mut |rel, m| {
                if m.kind == Kind::File {
                    files.push(rel.to_path_buf());
                }
            })?;
            for (rel, e) in errors {
                p.findings
                    .push(unreadable_path(name::VAR_CONTENT, &rel, &e));
            }
            // A file whose link could not be declared stays where it is (plan_var reports it).
            files.retain(|f| tmpfiles::check_path(&slash(f)).is_ok());
            for from in files {
                let to = Path::new("usr/lib/usrlocal").join(
                    from.strip_prefix("var/usrlocal")
                        .expect("below var/usrlocal"),
                );
                let replace = kind_at(&to)?.is_some();
                relocate(p, from, to, replace);
            }
        }
    }
    Ok(links)
}

/// Paths declared by the image's tmpfiles.d files other than ours, as the image sees them.
fn declared_tmpfiles(root: &Root, p: &mut Plan) -> std::io::Result<BTreeSet<PathBuf>> {
    let mut declared = BTreeSet::new();
    for (file, text) in read_conf_dirs(root, "tmpfiles.d", TMPFILES_CONF, name::VAR_CONTENT, p)? {
        match tmpfiles::parse(&display(&file), &text) {
            Ok(lines) => {
                for l in lines {
                    let path = PathBuf::from(OsStr::from_bytes(&l.path));
                    if !path.is_absolute() {
                        continue;
                    }
                    match root.resolve(&path, false) {
                        Ok(r) => {
                            declared.insert(r);
                        }
                        Err(e) => p.findings.push(finding(
                            name::VAR_CONTENT,
                            Severity::Warning,
                            vec![display(&path)],
                            format!(
                                "{} declares {}, which cannot be resolved in the image ({e}); the declaration is not taken into account",
                                display(&file),
                                display(&path)
                            ),
                            "break the symlink loop named in the message",
                        )),
                    }
                }
            }
            Err(e) => p
                .findings
                .push(unreadable_conf(name::VAR_CONTENT, &file, e)),
        }
    }
    Ok(declared)
}

/// The owner of a `d` line: the image's name for the id, or the id itself where the image has
/// no name or the name cannot stand in the field as itself (empty, `-`, all digits, or with a
/// control character: a carriage return would end the line and start another).
fn owner_names(accounts: Option<&Accounts>, m: &Meta) -> (String, String) {
    let usable = |n: &&str| {
        !n.is_empty()
            && *n != "-"
            && !n.bytes().all(|b| b.is_ascii_digit())
            && !n.chars().any(|c| c.is_control())
    };
    let user = accounts
        .and_then(|a| a.user_name(m.uid))
        .filter(usable)
        .map(String::from)
        .unwrap_or_else(|| m.uid.to_string());
    let group = accounts
        .and_then(|a| a.group_name(m.gid))
        .filter(usable)
        .map(String::from)
        .unwrap_or_else(|| m.gid.to_string());
    (user, group)
}

/// The package databases, where they are in /var and where `commit` moves them.
pub const PACKAGE_DBS: &[(&str, &str)] = &[
    ("var/lib/dpkg", "usr/lib/sysimage/dpkg"),
    ("var/lib/rpm", "usr/lib/sysimage/rpm"),
];

/// The line for a symlink in /var: `L`, except for a package database's link to its place in
/// /usr, which is `L+`: it replaces the old directory a machine may still have there (see
/// docs/commit.md, "Package databases").
fn var_link(rel: &Path, target: &[u8]) -> Line {
    let mut l = Line::symlink(&slash(rel), target);
    let to = lexical_target(rel, Path::new(OsStr::from_bytes(target)));
    if PACKAGE_DBS
        .iter()
        .any(|(var, usr)| rel == Path::new(var) && to.as_deref() == Some(Path::new(usr)))
    {
        l.kind = "L+".into();
    }
    l
}

/// Is `rel` removed by the cleaning step (so no line for it)?
fn cleaned(rel: &Path, m: &Meta) -> bool {
    let under = |d: &str| rel.starts_with(d) && rel != Path::new(d);
    CLEAN_DIRS.iter().any(|d| under(d)) || (under("var/log") && m.kind != Kind::Dir)
}

/// The walk of /var that turns it into tmpfiles.d lines (see the module doc).
struct VarWalk<'a> {
    root: &'a Root,
    relocated: &'a BTreeMap<PathBuf, PathBuf>,
    declared: &'a BTreeSet<PathBuf>,
    accounts: Option<&'a Accounts>,
    lines: LineSet,
    escaping: Vec<String>,
    changes: Vec<Change>,
    findings: Vec<Finding>,
}

impl VarWalk<'_> {
    fn file(&mut self, e: &Entry) -> std::io::Result<()> {
        let factory = Path::new(FACTORY).join(e.rel);
        let source = slash(&factory);
        if let Err(why) = tmpfiles::check_path(&source) {
            self.unwritable(e.rel, &format!("its copy {}", display(&factory)), &why);
            return Ok(());
        }
        let same = stat_path(&self.root.dir, &factory)?
            .is_some_and(|f| f.ino == e.meta.ino && f.dev == e.meta.dev);
        if !same {
            self.changes.push(Change::Factory {
                path: e.rel.to_path_buf(),
            });
        }
        self.lines.insert(Line::copy(&slash(e.rel), &source));
        Ok(())
    }

    fn unwritable(&mut self, rel: &Path, what: &str, why: &str) {
        self.findings.push(finding(
            name::VAR_CONTENT,
            Severity::Error,
            vec![display(rel)],
            format!(
                "{} cannot be declared in tmpfiles.d: {what} {why}; no line was written for it or anything below it. It stays in the image's /var (new installs get it); machines that already run the OS do not",
                display(rel)
            ),
            "rename it (no newline or carriage return in names, paths under 4096 bytes), or create it at boot another way",
        ));
    }
}

impl Visitor for VarWalk<'_> {
    fn enter(&mut self, e: &Entry) -> bool {
        let m = &e.meta;
        if self.root.is_foreign(m) || self.relocated.contains_key(e.rel) || cleaned(e.rel, m) {
            return false;
        }
        let path = slash(e.rel);
        if let Err(why) = tmpfiles::check_path(&path) {
            self.unwritable(e.rel, "its path", &why);
            return false;
        }
        let is_declared = self.declared.contains(e.rel);
        match m.kind {
            Kind::Dir => {
                if !is_declared {
                    let (u, g) = owner_names(self.accounts, m);
                    self.lines.insert(Line::dir(&path, m.perm, &u, &g));
                }
                return true;
            }
            Kind::Symlink => match read_link(e.parent, e.name) {
                Ok(target) => {
                    if lexical_target(e.rel, Path::new(&target)).is_none() {
                        self.escaping.push(display(e.rel));
                    }
                    if !is_declared {
                        self.lines.insert(var_link(e.rel, target.as_bytes()));
                    }
                }
                Err(err) => self.error(e.rel, err),
            },
            Kind::File if !is_declared => {
                if let Err(err) = self.file(e) {
                    self.error(e.rel, err);
                }
            }
            _ => {} // the special-files check reports these
        }
        false
    }

    fn error(&mut self, rel: &Path, e: std::io::Error) {
        self.findings
            .push(unreadable_path(name::VAR_CONTENT, rel, &e));
    }
}

fn plan_var(
    root: &Root,
    relocated: &BTreeMap<PathBuf, PathBuf>,
    accounts: Option<&Accounts>,
    p: &mut Plan,
) -> std::io::Result<()> {
    let declared = declared_tmpfiles(root, p)?;
    let previous_text = read_optional(&root.dir, Path::new(TMPFILES_CONF))?.unwrap_or_default();
    let previous: LineSet = LineSet {
        lines: tmpfiles::parse(TMPFILES_CONF, &previous_text)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.path.clone(), l))
            .collect(),
    };
    let mut lines = LineSet::default();
    let Some(var) = open_path_nofollow(&root.dir, Path::new("var"))? else {
        return Ok(());
    };
    // Relocated entries become links; the walk below sees what is there now.
    for (from, link) in relocated {
        if !declared.contains(from) {
            lines.insert(var_link(from, link.as_os_str().as_bytes()));
        }
    }
    let mut v = VarWalk {
        root,
        relocated,
        declared: &declared,
        accounts,
        lines,
        escaping: Vec::new(),
        changes: Vec::new(),
        findings: Vec::new(),
    };
    walk(var, Path::new("var"), &mut v);
    let VarWalk {
        lines,
        mut escaping,
        changes,
        findings,
        ..
    } = v;
    p.changes.extend(changes);
    p.findings.extend(findings);
    if !escaping.is_empty() {
        escaping.sort();
        p.findings.push(finding(
            name::VAR_LINK_ESCAPES_ROOT,
            Severity::Warning,
            escaping,
            "symlinks in /var whose relative target climbs above the root; inside the image `..` stops at /, so they point somewhere else than intended".into(),
            "make the targets absolute or relative to where the link is",
        ));
    }
    // Factory copies named by the previous file whose /var file is gone: a later step removed it.
    for l in previous.lines.values() {
        if l.kind == "C" && !lines.lines.contains_key(&l.path) {
            let var_rel = PathBuf::from(OsStr::from_bytes(&l.path[1..]));
            let factory = Path::new(FACTORY).join(&var_rel);
            if stat_path(&root.dir, &factory)?.is_some()
                && stat_path(&root.dir, &var_rel)?.is_none()
            {
                p.changes.push(Change::Remove { path: factory });
            }
        }
    }
    for (path, l) in &lines.lines {
        if previous.lines.get(path) != Some(l) {
            p.var_lines_pending
                .push(PathBuf::from(OsStr::from_bytes(&path[1..])));
        }
    }
    let rendered = lines.render(TMPFILES_HEADER);
    if rendered != previous_text && !(lines.lines.is_empty() && previous_text.is_empty()) {
        p.changes.push(Change::Write {
            path: TMPFILES_CONF.into(),
            detail: format!("{} tmpfiles.d lines", lines.lines.len()),
            contents: rendered,
        });
    }
    Ok(())
}

fn plan_accounts(root: &Root, accounts: &Accounts, p: &mut Plan) -> std::io::Result<()> {
    let mut declared = Declared::default();
    for (file, text) in read_conf_dirs(
        root,
        "sysusers.d",
        SYSUSERS_CONF,
        name::UNDECLARED_ACCOUNTS,
        p,
    )? {
        if let Err(e) = declared.add_file(&display(&file), &text) {
            p.findings
                .push(unreadable_conf(name::UNDECLARED_ACCOUNTS, &file, e));
        }
    }
    let (lines, problems) = sysusers::lines_for(accounts, &declared);
    for problem in problems {
        let (severity, file, fix) = match &problem {
            Problem::MissingPrimaryGroup { .. } => (Severity::Warning, "/etc/passwd", "add the group to /etc/group (groupadd -g <gid> <name>) or change the user's primary group"),
            Problem::InvalidName { kind, .. } => (Severity::Error, if *kind == "user" { "/etc/passwd" } else { "/etc/group" }, "rename the account to a name systemd-sysusers accepts"),
            Problem::SharedId { kind, .. } => (Severity::Error, if *kind == "user" { "/etc/passwd" } else { "/etc/group" }, "give the account an id of its own, or remove the alias"),
            Problem::PrimaryGroupNotDeclared { .. } => (Severity::Error, "/etc/passwd", "fix the primary group named in the message"),
        };
        p.findings.push(finding(
            name::UNDECLARED_ACCOUNTS,
            severity,
            vec![file.into()],
            problem.message(),
            fix,
        ));
    }
    let previous = read_optional(&root.dir, Path::new(SYSUSERS_CONF))?.unwrap_or_default();
    let mut ours = Declared::default();
    let _ = ours.add_file(SYSUSERS_CONF, &previous);
    // Pending for lint: what not even our own file declares yet.
    let mut all = declared.clone();
    all.users.extend(ours.users);
    all.groups.extend(ours.groups);
    all.members.extend(ours.members);
    p.accounts_pending = sysusers::lines_for(accounts, &all).0;

    let mut contents = String::from(SYSUSERS_HEADER);
    for l in &lines {
        contents.push_str(l);
        contents.push('\n');
    }
    if contents.as_bytes() != previous.as_slice() && !(lines.is_empty() && previous.is_empty()) {
        p.changes.push(Change::Write {
            path: SYSUSERS_CONF.into(),
            detail: format!("{} sysusers.d lines", lines.len()),
            contents: contents.into_bytes(),
        });
    }

    // Shadow entries without an account.
    for (file, known) in [
        (
            "etc/shadow",
            accounts
                .users
                .iter()
                .map(|u| u.name.clone())
                .collect::<BTreeSet<_>>(),
        ),
        (
            "etc/gshadow",
            accounts
                .groups
                .iter()
                .map(|g| g.name.clone())
                .collect::<BTreeSet<_>>(),
        ),
    ] {
        let text = match read_optional(&root.dir, Path::new(file)) {
            Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
            Ok(None) => continue,
            Err(e) => {
                p.findings.push(finding(
                    name::ORPHAN_SHADOW,
                    Severity::Error,
                    vec![format!("/{file}")],
                    format!("could not check: {e}"),
                    "see the message",
                ));
                continue;
            }
        };
        let names: Vec<String> = passwd::parse_shadow_names(&text)
            .into_iter()
            .map(|(_, n)| n)
            .filter(|n| !known.contains(n))
            .collect();
        if !names.is_empty() {
            p.changes.push(Change::DropShadow {
                path: file.into(),
                names,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links() {
        assert_eq!(
            relative_link(Path::new("var/opt/app"), Path::new("usr/lib/opt/app")),
            Path::new("../../usr/lib/opt/app")
        );
        assert_eq!(
            relative_link(
                Path::new("var/lib/dpkg"),
                Path::new("usr/lib/sysimage/dpkg")
            ),
            Path::new("../../usr/lib/sysimage/dpkg")
        );
        assert_eq!(
            relative_link(
                Path::new("var/usrlocal/bin/tool"),
                Path::new("usr/lib/usrlocal/bin/tool")
            ),
            Path::new("../../../usr/lib/usrlocal/bin/tool")
        );
    }
}
