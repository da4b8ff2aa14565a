//! Man pages and shell completions, made from the CLI definition ([`crate::cli::Cli`]) with
//! clap_mangen and clap_complete, so the installed binary prints them (`ostree-container man
//! [DIR]`, `ostree-container completions SHELL`) and they cannot disagree with `--help`.
//!
//! Pages: one per command, `ostree-container.1`, `ostree-container-commit.1`,
//! `ostree-container-image-pull.1`, … (none for clap's own `help` subcommands).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;

/// The command tree, built (help and version flags added), as the binary parses it.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// Write the completion script for `shell` to `out`. (Made in memory first: clap_complete
/// panics when its writer fails, e.g. a closed pipe.)
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut command(), "ostree-container", &mut buf);
    out.write_all(&buf)
}

/// Write the top-level man page (`ostree-container.1`) to `out`.
pub fn man_page(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}

/// Write every command's man page into `dir` (created if missing); returns the files written,
/// sorted.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    write_pages(&command(), dir, &mut written)?;
    written.sort();
    Ok(written)
}

/// One page for `cmd` (named by its display name, `ostree-container-image-pull`, which clap sets
/// when the tree is built), then its subcommands'.
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(&path, buf)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !s.is_hide_set())
    {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
