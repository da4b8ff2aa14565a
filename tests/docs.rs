//! Man pages and shell completions, generated from the CLI definition
//! (`ostree_container::cli::Cli`) with clap_mangen and clap_complete.
//!
//! `scripts/gen-docs [DIR]` runs this test with `OSTREE_CONTAINER_DOCS_OUT=DIR` to write them
//! (`DIR/man/*.1`, `DIR/completions/…`); on a normal test run they go to a temporary directory
//! and the test checks that every subcommand has its page and is completed.

use std::path::Path;

use clap::CommandFactory;
use ostree_container::cli::Cli;

fn completions(dir: &Path) {
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "ostree-container", dir).unwrap();
    }
}

#[test]
fn man_pages_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("OSTREE_CONTAINER_DOCS_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man).unwrap();
    std::fs::create_dir_all(&comp).unwrap();

    let mut cmd = Cli::command();
    cmd.build();
    // One page per command: ostree-container.1, ostree-container-image-pull.1, … (not for
    // clap's own `help` subcommands).
    clap_mangen::generate_to(cmd.clone(), &man).unwrap();
    for e in std::fs::read_dir(&man).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().contains("-help") {
            std::fs::remove_file(p).unwrap();
        }
    }
    completions(&comp);
    let pages: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".1")
                .to_string()
        })
        .collect();

    // Every subcommand, at every level, has a page that names it and says what it does.
    fn check(cmd: &clap::Command, name: &str, man: &Path) {
        let page = std::fs::read_to_string(man.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no man page for {name}: {e}"));
        assert!(page.contains(".TH"), "{name}.1 is a man page");
        if let Some(about) = cmd.get_about() {
            let first = about.to_string();
            let word = first.split_whitespace().next().unwrap_or_default();
            assert!(page.contains(word), "{name}.1 carries its description");
        }
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            check(sub, &format!("{name}-{}", sub.get_name()), man);
        }
    }
    check(&cmd, "ostree-container", &man);
    assert!(pages.iter().any(|p| p == "ostree-container-commit"));
    assert!(pages.iter().any(|p| p == "ostree-container-lint"));

    let bash = std::fs::read_to_string(comp.join("ostree-container.bash")).unwrap();
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        assert!(
            bash.contains(sub.get_name()),
            "bash completion knows {}",
            sub.get_name()
        );
    }
    assert!(bash.contains("--fatal-warnings"));
    assert!(comp.join("_ostree-container").is_file(), "zsh completion");
    assert!(
        comp.join("ostree-container.fish").is_file(),
        "fish completion"
    );
}
