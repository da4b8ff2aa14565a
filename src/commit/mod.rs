//! Build side, the verbs that run inside a Containerfile (`ostree container commit`, `lint`).
//!
//! - [`rootfs`]: symlink-safe access to the image's root;
//! - [`passwd`], [`sysusers`], [`tmpfiles`], [`words`]: the formats read and written;
//! - [`plan`]: what `commit` would change (read-only), [`apply`]: doing it, [`fsops`]: the
//!   filesystem operations it needs;
//! - [`lints`]: the layout checks; [`report`]: human and JSON output;
//! - [`guard`]: when `commit` may rewrite `/`.

pub mod apply;
pub mod fsops;
pub mod guard;
pub mod lints;
pub mod parse_error;
pub mod passwd;
pub mod plan;
pub mod report;
pub mod rootfs;
pub mod sysusers;
pub mod tmpfiles;
pub mod words;

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::cli::{CommitArgs, LintArgs, RootArgs};
use report::{Report, Severity};
use rootfs::Root;

fn open_root(args: &RootArgs) -> Result<(PathBuf, Root)> {
    let path = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let root = Root::open(&path).with_context(|| format!("opening the root {}", path.display()))?;
    Ok((path, root))
}

fn emit(report: &Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
}

/// `ostree container commit`: plan, apply (or with `--dry-run` only show), then lint; returns the exit code.
pub fn run_commit(args: &CommitArgs) -> Result<u8> {
    let (path, root) = open_root(&args.root)?;
    if !args.dry_run && !args.allow_rewriting_root {
        if let Some(reason) = guard::refusal(&guard::RootFacts::gather(&root)) {
            eprintln!("{}", guard::refusal_message(&reason));
            return Ok(2);
        }
    }
    let mut report = Report::new("commit", path.display().to_string(), args.dry_run);
    report.no_truncate = args.root.no_truncate;
    let plan = plan::plan(&root);
    if args.dry_run {
        report.actions = plan.changes.iter().map(apply::describe_planned).collect();
        let cx = lints::Context {
            root: &root,
            scan: lints::Scan::run(&root),
            plan,
        };
        report.findings = lints::run_lints(&cx, &[], true);
    } else {
        let (actions, failures) = apply::apply(&root, &plan);
        report.actions = actions;
        let cx = lints::Context::new(&root);
        // A change that failed is reported once, as the failure; the checks afterwards would
        // find the same path still to do.
        let failed: Vec<&String> = failures.iter().flat_map(|f| &f.paths).collect();
        for mut f in lints::run_lints(&cx, &[], false) {
            let had_paths = !f.paths.is_empty();
            f.paths.retain(|p| !failed.contains(&p));
            if f.paths.is_empty() && had_paths {
                continue;
            }
            report.findings.push(f);
        }
        report.findings.extend(failures);
    }
    report.finish();
    emit(&report, args.root.json);
    Ok(if report.counts.errors > 0 { 1 } else { 0 })
}

/// `ostree container lint`: run the checks (or list them); returns the exit code.
pub fn run_lint(args: &LintArgs) -> Result<u8> {
    if args.list {
        if args.root.json {
            println!("{}", lints::list_json());
        } else {
            print!("{}", lints::list_text());
        }
        return Ok(0);
    }
    for s in &args.skip {
        if !lints::LINTS.iter().any(|l| l.name == s) {
            let hint = match lints::closest(s) {
                Some(n) => format!("did you mean {n:?}? "),
                None => String::new(),
            };
            anyhow::bail!("--skip {s:?}: no such check; {hint}`lint --list` shows them");
        }
    }
    let (path, root) = open_root(&args.root)?;
    let cx = lints::Context::new(&root);
    let mut report = Report::new("lint", path.display().to_string(), false);
    report.no_truncate = args.root.no_truncate;
    report.findings = lints::run_lints(&cx, &args.skip, false);
    report.finish();
    emit(&report, args.root.json);
    let fatal = report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error || args.fatal_warnings);
    Ok(if fatal { 1 } else { 0 })
}
