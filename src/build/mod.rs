//! Build side: what runs inside a Containerfile.

pub mod passwd;
pub mod rootfs;
pub mod sysusers;
pub mod tmpfiles;
pub mod words;

use anyhow::Result;

use crate::cli::{CommitArgs, LintArgs};

pub fn run_commit(_args: &CommitArgs) -> Result<u8> {
    anyhow::bail!("commit: not implemented yet")
}

pub fn run_lint(_args: &LintArgs) -> Result<u8> {
    anyhow::bail!("lint: not implemented yet")
}
