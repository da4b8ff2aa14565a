//! Build side: what runs inside a Containerfile.

use anyhow::Result;

use crate::cli::{CommitArgs, LintArgs};

pub fn run_commit(_args: &CommitArgs) -> Result<u8> {
    anyhow::bail!("commit: not implemented yet")
}

pub fn run_lint(_args: &LintArgs) -> Result<u8> {
    anyhow::bail!("lint: not implemented yet")
}
