//! The layout checks: each one a static [`Lint`] (name, severity, description, fix, check
//! function), listed in [`LINTS`]; `lint --list` prints this table.
//!
//! A check returns hits (paths and a message) or an I/O error; an error becomes an error
//! finding "could not check", and the other checks still run. Checks that read what `commit`
//! would change (/var content, accounts, shadow entries, /tmp and /run) take it from the same
//! [`Plan`] that `commit` applies, so lint and commit can never disagree.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::plan::{Change, Plan};
use super::report::{Finding, Severity};
use super::rootfs::{
    display, list, open_dir_nofollow, open_path_nofollow, read_link, stat, walk, Entry, Kind, Root,
    Visitor,
};

/// One problem a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The image paths concerned, absolute (`/var/x`).
    pub paths: Vec<String>,
    /// What is wrong, in one sentence.
    pub message: String,
}

/// One check: a row of [`LINTS`].
pub struct Lint {
    /// Kebab-case name, used by `--skip` and in findings.
    pub name: &'static str,
    /// Severity of what it finds.
    pub severity: Severity,
    /// What a passing tree looks like (shown by `--list`).
    pub description: &'static str,
    /// How to fix what it finds.
    pub fix: &'static str,
    /// `commit` fixes what this check finds (so `commit --dry-run` shows it as actions instead).
    pub fixed_by_commit: bool,
    /// The check itself; an `Err` means it could not check.
    pub check: fn(&Context) -> io::Result<Vec<Hit>>,
}

/// What the checks look at: the root, one walk of the whole tree, and the commit plan.
pub struct Context<'a> {
    /// The image's root.
    pub root: &'a Root,
    /// One walk of the whole tree.
    pub scan: Scan,
    /// What `commit` would change.
    pub plan: Plan,
}

impl<'a> Context<'a> {
    /// Walk the root and work out the plan.
    pub fn new(root: &'a Root) -> Self {
        Context {
            root,
            scan: Scan::run(root),
            plan: super::plan::plan(root),
        }
    }
}

/// Facts gathered in one walk of the whole tree (image content only: mounts are skipped).
#[derive(Debug, Default)]
pub struct Scan {
    /// Paths whose name is not UTF-8.
    pub non_utf8_names: Vec<String>,
    /// Symlinks whose target is not UTF-8.
    pub non_utf8_targets: Vec<String>,
    /// (path, kind) of device nodes, FIFOs and sockets outside /dev and /run.
    pub special: Vec<(String, Kind)>,
    /// (path, error) of what could not be read.
    pub errors: Vec<(String, String)>,
}

impl Scan {
    /// Walk the root once (mount points skipped).
    pub fn run(root: &Root) -> Scan {
        let mut v = ScanVisitor {
            root,
            scan: Scan::default(),
        };
        match root.dir.try_clone() {
            Ok(d) => walk(d, Path::new(""), &mut v),
            Err(e) => v.scan.errors.push(("/".into(), e.to_string())),
        }
        v.scan
    }
}

struct ScanVisitor<'a> {
    root: &'a Root,
    scan: Scan,
}

impl Visitor for ScanVisitor<'_> {
    fn enter(&mut self, e: &Entry) -> bool {
        if self.root.is_foreign(&e.meta) {
            return false;
        }
        if std::str::from_utf8(e.name.as_bytes()).is_err() {
            self.scan.non_utf8_names.push(display(e.rel));
        }
        match e.meta.kind {
            Kind::Dir => return true,
            Kind::Symlink => {
                if let Ok(t) = read_link(e.parent, e.name) {
                    if std::str::from_utf8(t.as_bytes()).is_err() {
                        self.scan.non_utf8_targets.push(display(e.rel));
                    }
                }
            }
            Kind::File => {}
            k => {
                if !(e.rel.starts_with("dev") || e.rel.starts_with("run")) {
                    self.scan.special.push((display(e.rel), k));
                }
            }
        }
        false
    }

    fn error(&mut self, rel: &Path, e: io::Error) {
        self.scan.errors.push((display(rel), e.to_string()));
    }
}

fn stat_rel(root: &Root, rel: &str) -> io::Result<Option<super::rootfs::Meta>> {
    super::rootfs::stat_path(&root.dir, Path::new(rel))
}

fn hit(paths: Vec<String>, message: String) -> Vec<Hit> {
    vec![Hit { paths, message }]
}

fn check_api_dirs(cx: &Context) -> io::Result<Vec<Hit>> {
    let mut out = Vec::new();
    for d in ["dev", "proc", "sys", "run", "tmp", "var"] {
        match stat_rel(cx.root, d)? {
            Some(m) if m.kind == Kind::Dir => {}
            Some(m) => out.extend(hit(
                vec![format!("/{d}")],
                format!("/{d} is a {:?}, not a directory", m.kind).to_lowercase(),
            )),
            None => out.extend(hit(vec![format!("/{d}")], format!("/{d} is missing"))),
        }
    }
    Ok(out)
}

fn check_var_run(cx: &Context) -> io::Result<Vec<Hit>> {
    Ok(match stat_rel(cx.root, "var/run")? {
        None => hit(vec!["/var/run".into()], "/var/run is missing".into()),
        Some(m) if m.kind != Kind::Symlink => hit(
            vec!["/var/run".into()],
            "/var/run is a directory, not a link to /run".into(),
        ),
        Some(_) => {
            let to = match cx.root.resolve(Path::new("var/run"), true) {
                Ok(to) => to,
                Err(e) => return Ok(hit(vec!["/var/run".into()], format!("/var/run: {e}"))),
            };
            if to == Path::new("run") {
                vec![]
            } else {
                hit(
                    vec!["/var/run".into()],
                    format!("/var/run points to {}, not /run", display(&to)),
                )
            }
        }
    })
}

fn check_etc_usr_etc(cx: &Context) -> io::Result<Vec<Hit>> {
    Ok(match (stat_rel(cx.root, "etc")?, stat_rel(cx.root, "usr/etc")?) {
        (Some(_), Some(_)) => hit(
            vec!["/etc".into(), "/usr/etc".into()],
            "both /etc and /usr/etc exist; ostree keeps the image's /etc as /usr/etc and would have to pick one".into(),
        ),
        _ => vec![],
    })
}

fn check_kernels(cx: &Context) -> io::Result<Vec<Hit>> {
    let Some(modules) = open_path_nofollow(&cx.root.dir, Path::new("usr/lib/modules"))? else {
        return Ok(vec![]);
    };
    let mut kernels = Vec::new();
    for kver in list(&modules)? {
        if let Ok(d) = open_dir_nofollow(&modules, &kver) {
            if stat(&d, "vmlinuz")?.is_some_and(|m| m.kind == Kind::File) {
                kernels.push(display(
                    &Path::new("usr/lib/modules").join(&kver).join("vmlinuz"),
                ));
            }
        }
    }
    Ok(if kernels.len() > 1 {
        let n = kernels.len();
        hit(
            kernels,
            format!("{n} kernels in /usr/lib/modules; ostree boots one kernel per deployment"),
        )
    } else {
        vec![]
    })
}

fn check_boot_empty(cx: &Context) -> io::Result<Vec<Hit>> {
    let Some(boot) = open_path_nofollow(&cx.root.dir, Path::new("boot"))
        .ok()
        .flatten()
    else {
        return Ok(vec![]);
    };
    if stat(&boot, ".")?.is_some_and(|m| cx.root.is_foreign(&m)) {
        return Ok(vec![]);
    }
    let entries: Vec<String> = list(&boot)?
        .iter()
        .map(|n| display(&Path::new("boot").join(n)))
        .collect();
    Ok(if entries.is_empty() {
        vec![]
    } else {
        hit(entries, "/boot is not empty; on an ostree machine /boot belongs to the bootloader and the image's copy is ignored".into())
    })
}

fn check_sysroot(cx: &Context) -> io::Result<Vec<Hit>> {
    let mut out = Vec::new();
    if !stat_rel(cx.root, "sysroot")?.is_some_and(|m| m.kind == Kind::Dir) {
        out.extend(hit(
            vec!["/sysroot".into()],
            "/sysroot is missing or not a directory (ostree mounts the physical root there)".into(),
        ));
    }
    match stat_rel(cx.root, "ostree")? {
        Some(m) if m.kind == Kind::Symlink => {
            let target = match cx.root.resolve(Path::new("ostree"), true) {
                Ok(t) => t,
                Err(e) => return Ok(hit(vec!["/ostree".into()], format!("/ostree: {e}"))),
            };
            if target != Path::new("sysroot/ostree") {
                out.extend(hit(
                    vec!["/ostree".into()],
                    format!("/ostree points to {}, not sysroot/ostree", display(&target)),
                ));
            }
        }
        _ => out.extend(hit(
            vec!["/ostree".into()],
            "/ostree is not a link to sysroot/ostree".into(),
        )),
    }
    Ok(out)
}

fn check_utf8(cx: &Context) -> io::Result<Vec<Hit>> {
    let mut out = Vec::new();
    if !cx.scan.non_utf8_names.is_empty() {
        out.extend(hit(
            cx.scan.non_utf8_names.clone(),
            "file names that are not UTF-8; ostree cannot store them".into(),
        ));
    }
    if !cx.scan.non_utf8_targets.is_empty() {
        out.extend(hit(
            cx.scan.non_utf8_targets.clone(),
            "symlinks whose targets are not UTF-8; ostree cannot store them".into(),
        ));
    }
    Ok(out)
}

fn check_special(cx: &Context) -> io::Result<Vec<Hit>> {
    Ok(if cx.scan.special.is_empty() {
        vec![]
    } else {
        let kinds: std::collections::BTreeSet<String> = cx
            .scan
            .special
            .iter()
            .map(|(_, k)| format!("{k:?}").to_lowercase())
            .collect();
        hit(
            cx.scan.special.iter().map(|(p, _)| p.clone()).collect(),
            format!(
                "{} files ostree cannot store ({}) outside /dev and /run",
                cx.scan.special.len(),
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

fn check_scan_errors(cx: &Context) -> io::Result<Vec<Hit>> {
    // The same words as the plan's walks use for a path they could not read, so that one
    // problem is reported once (the report merges equal findings).
    Ok(cx
        .scan
        .errors
        .iter()
        .map(|(path, e)| Hit {
            paths: vec![path.clone()],
            message: format!("could not read {path}: {e}"),
        })
        .collect())
}

fn var_paths(plan: &Plan) -> Vec<String> {
    let mut paths: Vec<String> = plan.var_lines_pending.iter().map(|p| display(p)).collect();
    for c in &plan.changes {
        match c {
            Change::Relocate { from, .. } | Change::Factory { path: from } => {
                paths.push(display(from))
            }
            Change::Remove { path } if path.starts_with("var") => paths.push(display(path)),
            _ => {}
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

fn check_var_content(cx: &Context) -> io::Result<Vec<Hit>> {
    let paths = var_paths(&cx.plan);
    Ok(if paths.is_empty() {
        vec![]
    } else {
        let n = paths.len();
        hit(paths, format!("{n} paths in /var that machines already running the OS would never get (ostree does not update /var)"))
    })
}

fn check_accounts(cx: &Context) -> io::Result<Vec<Hit>> {
    let pending = &cx.plan.accounts_pending;
    if pending.is_empty() {
        return Ok(vec![]);
    }
    let of = |kind: &str| -> Vec<String> {
        pending
            .iter()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|rest| {
                let w: Vec<&str> = rest.split(' ').collect();
                if kind == "m " {
                    format!("{} in {}", w[0], w.get(1).unwrap_or(&""))
                } else {
                    w[0].to_string()
                }
            })
            .collect()
    };
    let mut parts = Vec::new();
    for (kind, label) in [("u ", "users"), ("g ", "groups"), ("m ", "memberships")] {
        let names = of(kind);
        if !names.is_empty() {
            parts.push(format!("{label}: {}", names.join(", ")));
        }
    }
    Ok(hit(
        vec!["/etc/passwd".into(), "/etc/group".into()],
        format!("accounts that no sysusers.d file declares, so machines already running the OS would not get them ({})", parts.join("; ")),
    ))
}

fn check_orphan_shadow(cx: &Context) -> io::Result<Vec<Hit>> {
    Ok(cx
        .plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::DropShadow { path, names } => Some(Hit {
                paths: vec![display(path)],
                message: format!(
                    "{} has entries with no account: {}; systemd-sysusers fails on them",
                    display(path),
                    names.join(", ")
                ),
            }),
            _ => None,
        })
        .collect())
}

fn check_tmp_run(cx: &Context) -> io::Result<Vec<Hit>> {
    let paths: Vec<String> = cx
        .plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Remove { path } if path.starts_with("tmp") || path.starts_with("run") => {
                Some(display(path))
            }
            _ => None,
        })
        .collect();
    Ok(if paths.is_empty() {
        vec![]
    } else {
        hit(
            paths,
            "content in /tmp or /run; machines mount fresh filesystems there".into(),
        )
    })
}

fn check_empty_build_files(cx: &Context) -> io::Result<Vec<Hit>> {
    let mut paths = Vec::new();
    for f in ["etc/hostname", "etc/resolv.conf"] {
        if let Some(m) = stat_rel(cx.root, f)? {
            if m.kind == Kind::File && m.size == 0 && !cx.root.is_foreign(&m) {
                paths.push(format!("/{f}"));
            }
        }
    }
    Ok(if paths.is_empty() {
        vec![]
    } else {
        hit(paths, "empty files left by the build tool; they would hide the machine's own hostname and DNS setup".into())
    })
}

fn from_plan(_: &Context) -> io::Result<Vec<Hit>> {
    Ok(vec![]) // findings come from the plan under this check's name
}

/// Names of the checks whose findings [`plan`](super::plan) makes while working out the changes.
/// plan.rs refers to these constants, never to a string literal, and the table below uses the
/// same constants, so a check the plan reports under always exists (tests below keep it so).
pub mod name {
    /// The `var-content` check.
    pub const VAR_CONTENT: &str = "var-content";
    /// The `undeclared-accounts` check.
    pub const UNDECLARED_ACCOUNTS: &str = "undeclared-accounts";
    /// The `tmp-run-content` check.
    pub const TMP_RUN_CONTENT: &str = "tmp-run-content";
    /// The `var-link-escapes-root` check.
    pub const VAR_LINK_ESCAPES_ROOT: &str = "var-link-escapes-root";
    /// The `orphan-shadow` check.
    pub const ORPHAN_SHADOW: &str = "orphan-shadow";
}

/// Every check, in the order they run and are listed.
pub static LINTS: &[Lint] = &[
    Lint { name: "api-dirs", severity: Severity::Error, description: "/dev, /proc, /sys, /run, /tmp and /var are real directories", fix: "create them as directories (mkdir -p /dev /proc /sys /run /tmp /var); replace any symlink", fixed_by_commit: false, check: check_api_dirs },
    Lint { name: "var-run-link", severity: Severity::Error, description: "/var/run is a link to /run", fix: "rm -rf /var/run && ln -s ../run /var/run", fixed_by_commit: false, check: check_var_run },
    Lint { name: "etc-and-usr-etc", severity: Severity::Error, description: "/etc and /usr/etc do not both exist", fix: "merge /usr/etc into /etc and remove /usr/etc; ostree moves /etc to /usr/etc itself", fixed_by_commit: false, check: check_etc_usr_etc },
    Lint { name: "one-kernel", severity: Severity::Error, description: "at most one kernel in /usr/lib/modules/*/vmlinuz", fix: "remove the kernels you do not boot (apt-get purge / dnf remove the old kernel package)", fixed_by_commit: false, check: check_kernels },
    Lint { name: "boot-empty", severity: Severity::Warning, description: "/boot is empty (kernels live in /usr/lib/modules/<kver>)", fix: "move /boot/vmlinuz-<kver> to /usr/lib/modules/<kver>/vmlinuz and the initramfs to initramfs.img beside it; remove the rest of /boot", fixed_by_commit: false, check: check_boot_empty },
    Lint { name: "sysroot-layout", severity: Severity::Error, description: "/sysroot exists and /ostree links to sysroot/ostree (bootable base)", fix: "mkdir -p /sysroot && ln -sfn sysroot/ostree /ostree", fixed_by_commit: false, check: check_sysroot },
    Lint { name: "utf8-names", severity: Severity::Error, description: "file names and symlink targets are UTF-8", fix: "rename the files (or fix the links) to UTF-8 names", fixed_by_commit: false, check: check_utf8 },
    Lint { name: "special-files", severity: Severity::Error, description: "no device nodes, FIFOs or sockets outside /dev and /run", fix: "remove them; create them at boot with a tmpfiles.d line (p, c, b) or let the service create its socket", fixed_by_commit: false, check: check_special },
    Lint { name: "unreadable", severity: Severity::Error, description: "every directory of the image can be read", fix: "fix the permissions or remove the paths named", fixed_by_commit: false, check: check_scan_errors },
    Lint { name: name::VAR_CONTENT, severity: Severity::Warning, description: "/var content is declared in tmpfiles.d (and /opt, /usr/local, package databases live in /usr)", fix: "end the RUN step with `ostree container commit`", fixed_by_commit: true, check: check_var_content },
    Lint { name: name::VAR_LINK_ESCAPES_ROOT, severity: Severity::Warning, description: "relative symlinks in /var do not climb above the root", fix: "make the targets absolute or relative to where the link is", fixed_by_commit: false, check: from_plan },
    Lint { name: name::UNDECLARED_ACCOUNTS, severity: Severity::Warning, description: "every user, group and membership is declared in sysusers.d", fix: "end the RUN step with `ostree container commit`", fixed_by_commit: true, check: check_accounts },
    Lint { name: name::ORPHAN_SHADOW, severity: Severity::Error, description: "every /etc/shadow and /etc/gshadow entry has an account", fix: "run `ostree container commit`, which drops them, or remove the lines by hand", fixed_by_commit: true, check: check_orphan_shadow },
    Lint { name: name::TMP_RUN_CONTENT, severity: Severity::Warning, description: "/tmp and /run are empty", fix: "end the RUN step with `ostree container commit`", fixed_by_commit: true, check: check_tmp_run },
    Lint { name: "empty-build-files", severity: Severity::Warning, description: "no empty /etc/hostname or /etc/resolv.conf left by the build tool", fix: "remove them after the build (e.g. `buildah run` is not enough: use `buildah mount` and rm, or a final `RUN rm -f` in a tool that does not bind them)", fixed_by_commit: false, check: check_empty_build_files },
];

/// Run the checks not in `skip` (nor, with `only_unfixable`, those `commit` fixes).
pub fn run_lints(cx: &Context, skip: &[String], only_unfixable: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in LINTS {
        if skip.iter().any(|s| s == l.name) || (only_unfixable && l.fixed_by_commit) {
            continue;
        }
        match (l.check)(cx) {
            Ok(hits) => out.extend(hits.into_iter().map(|h| Finding {
                check: l.name,
                severity: l.severity,
                paths: h.paths,
                message: h.message,
                fix: l.fix.into(),
            })),
            Err(e) => out.push(Finding {
                check: l.name,
                severity: Severity::Error,
                paths: vec![],
                message: format!("could not check: {e}"),
                fix: "see the message".into(),
            }),
        }
    }
    // Findings the plan made while working things out, under their checks' names.
    for f in &cx.plan.findings {
        if skip.iter().any(|s| s == f.check) {
            continue;
        }
        // With --dry-run, warnings of checks that commit fixes show up as planned actions.
        let fixed = LINTS.iter().any(|l| l.name == f.check && l.fixed_by_commit);
        if only_unfixable && fixed && f.severity == Severity::Warning {
            continue;
        }
        out.push(f.clone());
    }
    out
}

/// The check name closest to a mistyped one (edit distance at most 3), for "did you mean".
pub fn closest(name: &str) -> Option<&'static str> {
    LINTS
        .iter()
        .map(|l| (edit_distance(name, l.name), l.name))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `lint --list`: the table of checks, one line each (name, severity, description).
pub fn list_text() -> String {
    let mut s = String::new();
    for l in LINTS {
        s.push_str(&format!(
            "{:<22} {:<8} {}\n",
            l.name,
            l.severity.as_str(),
            l.description
        ));
    }
    s
}

/// `lint --list --json`: the same table as a JSON document,
/// `{"schema_version": 1, "checks": [{"name", "severity", "description", "fix",
/// "fixed_by_commit"}, …]}`, in the order the checks run.
pub fn list_json() -> serde_json::Value {
    let checks: Vec<serde_json::Value> = LINTS
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "severity": l.severity.as_str(),
                "description": l.description,
                "fix": l.fix,
                "fixed_by_commit": l.fixed_by_commit,
            })
        })
        .collect();
    serde_json::json!({ "schema_version": super::report::SCHEMA_VERSION, "checks": checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean() {
        assert_eq!(closest("var-contnet"), Some("var-content"));
        assert_eq!(closest("sysroot"), None);
        assert_eq!(closest("one-kernels"), Some("one-kernel"));
        assert_eq!(closest("something-else-entirely"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    fn is_kebab_case(s: &str) -> bool {
        !s.is_empty()
            && s.split('-').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    }

    #[test]
    fn check_names_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for l in LINTS {
            assert!(is_kebab_case(l.name), "{:?} is not kebab-case", l.name);
            assert!(seen.insert(l.name), "{:?} is in LINTS twice", l.name);
            assert!(!l.description.is_empty() && !l.fix.is_empty(), "{}", l.name);
        }
        assert!(!is_kebab_case("Var-content") && !is_kebab_case("var--content"));
    }

    #[test]
    fn every_check_is_documented_in_commit_md() {
        // The table "The checks, what they mean, and the fix" in docs/commit.md has one row
        // per check, starting with the name in backquotes.
        let doc = include_str!("../../docs/commit.md");
        let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
        for l in LINTS {
            let row = format!("| `{}` | {}", l.name, l.severity.as_str());
            assert!(
                rows.iter().any(|r| r.starts_with(&row)),
                "docs/commit.md has no row starting {row:?}"
            );
        }
    }

    #[test]
    fn every_name_the_plan_reports_under_is_a_check() {
        for n in [
            name::VAR_CONTENT,
            name::UNDECLARED_ACCOUNTS,
            name::TMP_RUN_CONTENT,
            name::VAR_LINK_ESCAPES_ROOT,
            name::ORPHAN_SHADOW,
        ] {
            assert!(LINTS.iter().any(|l| l.name == n), "{n} is not in LINTS");
        }
        // And plan.rs never retypes a check's name as a literal (it uses `name::…`).
        let plan = include_str!("plan.rs");
        for l in LINTS {
            let literal = format!("\"{}\"", l.name);
            assert!(
                !plan.contains(&literal),
                "plan.rs spells {literal}; use lints::name"
            );
        }
    }

    #[test]
    fn list_is_the_table() {
        let text = list_text();
        assert_eq!(text.lines().count(), LINTS.len());
        let json = list_json();
        assert_eq!(json["schema_version"], super::super::report::SCHEMA_VERSION);
        let checks = json["checks"].as_array().unwrap();
        assert_eq!(checks.len(), LINTS.len());
        for ((l, line), j) in LINTS.iter().zip(text.lines()).zip(checks) {
            assert_eq!(
                line.split_whitespace().take(2).collect::<Vec<_>>(),
                [l.name, l.severity.as_str()]
            );
            assert!(line.ends_with(l.description), "{line}");
            assert_eq!(j["name"], l.name);
            assert_eq!(j["severity"], l.severity.as_str());
            assert_eq!(j["fix"], l.fix);
            assert_eq!(j["fixed_by_commit"], l.fixed_by_commit);
        }
    }
}
