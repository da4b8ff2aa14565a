//! Command-line definition and dispatch.
//!
//! Argument handling is in two phases: clap parses what was typed into plain structs here, then
//! the `run_*` functions open the root and call into the modules that do the work. Exit codes:
//! 0 success, 1 the command ran and found fatal problems, 2 it could not run (bad arguments,
//! I/O failure).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::commit;

/// Build ostree-based OS images with container tools, and turn them into ostree commits.
#[derive(Debug, Parser)]
#[command(name = "ostree-container", version, propagate_version = true)]
pub struct Cli {
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs; the host-side ones come from their modules' `cli.rs`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the container's root filesystem right for ostree (run at the end of each RUN).
    Commit(CommitArgs),
    /// Check the root filesystem's layout without changing anything.
    Lint(LintArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with DIR write every command's page there (ostree-container*.1).
    Man {
        /// Directory to write all the pages to.
        dir: Option<PathBuf>,
    },
    #[cfg(feature = "host")]
    /// `image …` and the other exporter verbs.
    #[command(flatten)]
    Host(crate::host::cli::HostCommand),
    #[cfg(feature = "host")]
    /// `encapsulate`, `diff`.
    #[command(flatten)]
    Encapsulate(crate::encapsulate::cli::EncapsulateCommand),
    #[cfg(feature = "host")]
    /// `serve`.
    #[command(flatten)]
    Serve(crate::serve::cli::ServeCommand),
    #[cfg(feature = "host")]
    /// `deploy`, `switch`, `upgrade`, `status`.
    #[command(flatten)]
    Machine(crate::machine::cli::MachineCommand),
}

/// Options shared by `commit` and `lint`.
#[derive(Debug, Args, Clone)]
pub struct RootArgs {
    /// Operate on this directory as the image's root (default: `/`; `commit` rewrites `/` only
    /// where it looks like an OS image being built, see docs/commit.md).
    #[arg(long, visible_alias = "rootfs", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print one JSON document instead of human-readable lines.
    #[arg(long)]
    pub json: bool,
    /// Show every path of a finding in text output (by default at most ten; JSON has all).
    #[arg(long)]
    pub no_truncate: bool,
}

/// Arguments of `commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Where the root is and how to report.
    #[command(flatten)]
    pub root: RootArgs,
    /// Print what would be done, with the exact tmpfiles.d and sysusers.d lines; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite `/` even where it does not look like an OS image being built (no ostree layout,
    /// no container marker); see docs/commit.md for the rule.
    #[arg(long)]
    pub allow_rewriting_root: bool,
}

/// Arguments of `lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Where the root is and how to report.
    #[command(flatten)]
    pub root: RootArgs,
    /// Exit non-zero on warnings too.
    #[arg(long)]
    pub fatal_warnings: bool,
    /// Skip the named checks (repeatable, or a comma-separated list); see `--list`.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// List the checks and exit (with `--json`, as a JSON document).
    #[arg(long)]
    pub list: bool,
}

/// Turn the three ways of being called into one argument vector for clap.
///
/// - `ostree-container commit …` is left as it is.
/// - `… container commit …` (libostree's dispatch passes `container` first) drops `container`.
/// - Called as `ostree` (installed or bind-mounted over /usr/bin/ostree in an image without
///   libostree), only `ostree container <verb>` is ours; anything else is an error saying so.
pub fn normalize_args(mut args: Vec<OsString>) -> std::result::Result<Vec<OsString>, String> {
    if args.is_empty() {
        args.push("ostree-container".into());
    }
    let argv0 = Path::new(&args[0])
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let has_container = args.get(1).map(|a| a == "container").unwrap_or(false);
    if argv0 == "ostree" && !has_container {
        return Err(
            "this `ostree` is ostree-container and only implements `ostree container <verb>` \
             (commit, lint, …); install libostree's `ostree` for other commands"
                .into(),
        );
    }
    if has_container {
        args.remove(1);
    }
    args[0] = "ostree-container".into();
    Ok(args)
}

/// Log to stderr, filtered by `OSTREE_CONTAINER_LOG` (tracing's `EnvFilter` syntax; default:
/// warnings).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("OSTREE_CONTAINER_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// Parse and run; returns the process exit code.
pub fn run(args: Vec<OsString>) -> Result<u8> {
    let args = match normalize_args(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return Ok(code);
        }
    };
    match cli.command {
        Command::Commit(a) => commit::run_commit(&a),
        Command::Lint(a) => commit::run_lint(&a),
        Command::Completions { shell } => {
            crate::manual::completions(shell, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Man { dir: None } => {
            crate::manual::man_page(&mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Man { dir: Some(dir) } => {
            let pages = crate::manual::man_pages(&dir)?;
            println!("{} man pages in {}", pages.len(), dir.display());
            Ok(0)
        }
        #[cfg(feature = "host")]
        Command::Host(c) => crate::host::run(c),
        #[cfg(feature = "host")]
        Command::Encapsulate(c) => crate::encapsulate::run(c),
        #[cfg(feature = "host")]
        Command::Serve(c) => crate::serve::run(c, crate::host::pull_into_archive),
        #[cfg(feature = "host")]
        Command::Machine(c) => crate::machine::run(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn normalize_forms() {
        let want = v(&["ostree-container", "commit", "--json"]);
        assert_eq!(
            normalize_args(v(&["ostree-container", "commit", "--json"])).unwrap(),
            want
        );
        assert_eq!(
            normalize_args(v(&[
                "/usr/libexec/libostree/ext/ostree-container",
                "container",
                "commit",
                "--json"
            ]))
            .unwrap(),
            want
        );
        assert_eq!(
            normalize_args(v(&["/usr/bin/ostree", "container", "commit", "--json"])).unwrap(),
            want
        );
        let err = normalize_args(v(&["ostree", "admin", "status"])).unwrap_err();
        assert!(err.contains("only implements `ostree container"), "{err}");
    }
}
