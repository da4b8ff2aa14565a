//! Man pages, shell completions and docs/cli.md, all made from the CLI definition.
//!
//! The binary prints the man pages and completions itself (`ostree-container man [DIR]`,
//! `ostree-container completions SHELL`, src/manual.rs); these tests run it. docs/cli.md ends with
//! a reference section that is every command's `--help`, generated: `scripts/gen-docs` rewrites
//! it (`OSTREE_CONTAINER_UPDATE_DOCS=1`), and a normal test run fails if it differs from the
//! binary's, so the file cannot drift. `scripts/gen-docs [DIR]` also writes the man pages and
//! completions to DIR (`OSTREE_CONTAINER_DOCS_OUT`).

use std::path::PathBuf;
use std::process::Command;

use crate::support::bin;

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new(bin())
        .args(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(out.status.success(), "ostree-container {args:?}: {out:?}");
    out.stdout
}

/// Every command as its words after `ostree-container` ([] for the top), depth first, without
/// clap's `help` subcommands.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&ostree_container::manual::command(), vec![], &mut out);
    out
}

#[test]
fn man_pages_and_completions_come_from_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("OSTREE_CONTAINER_DOCS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&comp).unwrap();

    let said = String::from_utf8(run(&["man", man.to_str().unwrap()])).unwrap();
    // Every command, at every level, has a page that names it and says what it does.
    let paths = command_paths();
    assert!(
        said.starts_with(&format!("{} man pages", paths.len())),
        "{said}"
    );
    let tree = ostree_container::manual::command();
    for words in &paths {
        let name = std::iter::once("ostree-container")
            .chain(words.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("-");
        let page = std::fs::read_to_string(man.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no man page for {name}: {e}"));
        assert!(page.contains(".TH"), "{name}.1 is a man page");
        let mut cmd = &tree;
        for w in words {
            cmd = cmd.find_subcommand(w).unwrap();
        }
        if let Some(about) = cmd.get_about() {
            let word = about.to_string();
            let word = word
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            assert!(page.contains(&word), "{name}.1 carries its description");
        }
    }
    assert!(!man.join("ostree-container-help.1").exists());
    // `man` alone prints the top page.
    let top = String::from_utf8(run(&["man"])).unwrap();
    assert_eq!(
        top,
        std::fs::read_to_string(man.join("ostree-container.1")).unwrap()
    );

    for (shell, file) in [
        ("bash", "ostree-container.bash"),
        ("zsh", "_ostree-container"),
        ("fish", "ostree-container.fish"),
    ] {
        let script = run(&["completions", shell]);
        std::fs::write(comp.join(file), &script).unwrap();
        let script = String::from_utf8(script).unwrap();
        for sub in tree
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            assert!(
                script.contains(sub.get_name()),
                "{shell} completion knows {}",
                sub.get_name()
            );
        }
        assert!(script.contains("fatal-warnings"), "{shell}");
    }
    // bash itself accepts the script.
    let ok = Command::new("bash")
        .arg("-n")
        .arg(comp.join("ostree-container.bash"))
        .status()
        .unwrap();
    assert!(ok.success(), "bash -n on the completion script");
}

#[cfg(feature = "host")]
const BEGIN: &str = "<!-- Generated from `ostree-container <command> --help` by tests/it/docs.rs; \
                     run scripts/gen-docs to update. -->";

/// The reference section: each command's `--help`, as the binary prints it.
#[cfg(feature = "host")]
fn reference() -> String {
    let mut s = format!("{BEGIN}\n\n## Reference (`--help` of every command)\n");
    for words in command_paths() {
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        let help = String::from_utf8(run(&args)).unwrap();
        let title = std::iter::once("ostree-container")
            .chain(words.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        s.push_str(&format!(
            "\n### `{title}`\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    }
    s
}

/// docs/cli.md = the hand-written overview, then the generated reference (of the full binary:
/// the `--no-default-features` one has fewer commands).
#[cfg(feature = "host")]
#[test]
fn cli_md_reference_is_the_binarys_help() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let overview = text.split(BEGIN).next().unwrap().trim_end();
    let want = format!("{overview}\n\n{}", reference());
    if std::env::var_os("OSTREE_CONTAINER_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    } else if text != want {
        let at = text
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(text.lines().count().min(want.lines().count()));
        panic!(
            "docs/cli.md differs from the binary's --help from line {}: run scripts/gen-docs\n\
             file:   {:?}\nbinary: {:?}",
            at + 1,
            text.lines().nth(at),
            want.lines().nth(at)
        );
    }
    // Every flag the overview names is one the binary has.
    let tree = ostree_container::manual::command();
    let mut flags = std::collections::BTreeSet::new();
    fn collect(cmd: &clap::Command, flags: &mut std::collections::BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                flags.insert(l.to_string());
            }
            for alias in a.get_all_aliases().into_iter().flatten() {
                flags.insert(alias.to_string());
            }
        }
        for s in cmd.get_subcommands() {
            collect(s, flags);
        }
    }
    collect(&tree, &mut flags);
    for word in overview.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if let Some(flag) = word.strip_prefix("--") {
            if !flag.is_empty() && flag.chars().next().unwrap().is_ascii_lowercase() {
                assert!(
                    flags.contains(flag),
                    "docs/cli.md names --{flag}, which no command has"
                );
            }
        }
    }
}
