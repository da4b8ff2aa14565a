//! Machine side: deploy an image into a sysroot, follow it, and upgrade it.
//!
//! - [`sysroot`]: opening and checking a sysroot, choosing the stateroot;
//! - [`origin`]: the origin file naming the image a deployment follows (as ostree-rs-ext,
//!   rpm-ostree and bootc write it);
//! - [`deploy`]: `deploy` and `switch` (pull into the sysroot's repository, then deploy or stage);
//! - [`upgrade`]: `upgrade [--check]` (the image's manifest now against the deployed one);
//! - [`status`]: what the sysroot runs.
//!
//! Pulling is [`crate::host::import::pull`] into the sysroot's own repository.

pub mod cli;
pub mod deploy;
pub mod origin;
pub mod status;
pub mod sysroot;
pub mod upgrade;

use anyhow::{Context, Result};
use serde::Serialize;

use cli::{MachineCommand, SysrootArgs};
use deploy::DeployRequest;
use sysroot::Machine;

fn parse_imgref(s: &str) -> Result<crate::oci::imgref::OstreeImageReference> {
    crate::oci::imgref::OstreeImageReference::parse_any(s)
        .with_context(|| format!("image reference {s:?}"))
}

/// Registry options and progress events for a pull, from the command line.
fn pull_options(
    fetch: &crate::host::cli::FetchArgs,
    progress: &crate::host::cli::ProgressArgs,
) -> Result<crate::host::import::PullOptions> {
    Ok(crate::host::import::PullOptions {
        fetch: fetch.options(),
        events: progress
            .progress_fd
            .map(crate::host::progress::event_sink)
            .transpose()?,
        ..Default::default()
    })
}

fn print(json: bool, value: &impl Serialize, text: impl FnOnce() -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("status serializes")
        );
    } else {
        print!("{}", text());
    }
}

/// Lock the sysroot, deploy, unlock.
fn locked_deploy(m: &Machine, req: &DeployRequest) -> Result<deploy::Deployed> {
    m.lock()?;
    let r = deploy::deploy(m, req);
    m.unlock();
    r
}

fn run_deploy(common: &SysrootArgs, req: DeployRequest) -> Result<u8> {
    let m = Machine::open(&common.sysroot)?;
    let d = locked_deploy(&m, &req)?;
    if !req.quiet && !common.json {
        eprintln!("{}", d.pull_summary);
    }
    print(common.json, &d, || d.to_text());
    Ok(0)
}

#[derive(Serialize)]
struct UpgradeOutput {
    check: upgrade::Check,
    deployed: Option<deploy::Deployed>,
}

/// Run a machine verb; returns the exit code.
pub fn run(cmd: MachineCommand) -> Result<u8> {
    match cmd {
        MachineCommand::Deploy(a) => {
            let req = DeployRequest {
                imgref: parse_imgref(&a.imgref)?,
                target_imgref: a.target_imgref.as_deref().map(parse_imgref).transpose()?,
                stateroot: a.stateroot,
                kargs: (!a.karg.is_empty()).then_some(a.karg),
                quiet: a.quiet || a.common.json,
                pull: pull_options(&a.fetch, &a.progress)?,
            };
            run_deploy(&a.common, req)
        }
        MachineCommand::Switch(a) => {
            let imgref = parse_imgref(&a.imgref)?;
            let m = Machine::open(&a.common.sysroot)?;
            let Some(current) = m.current_deployment() else {
                anyhow::bail!(
                    "{} has no deployment to switch; use `ostree-container deploy --sysroot {} {}`",
                    m.path.display(),
                    m.path.display(),
                    a.imgref
                );
            };
            let req = DeployRequest {
                imgref,
                target_imgref: None,
                stateroot: Some(current.osname().to_string()),
                kargs: None,
                quiet: a.quiet || a.common.json,
                pull: pull_options(&a.fetch, &a.progress)?,
            };
            drop(m);
            run_deploy(&a.common, req)
        }
        MachineCommand::Upgrade(a) => {
            let m = Machine::open(&a.common.sysroot)?;
            let pull = pull_options(&a.fetch, &a.progress)?;
            let check = upgrade::check(&m, &pull.fetch)?;
            let deployed = if a.check || !check.update_available {
                None
            } else {
                let (_, imgref) = upgrade::followed(&m)?;
                Some(locked_deploy(
                    &m,
                    &DeployRequest {
                        imgref,
                        target_imgref: None,
                        stateroot: Some(check.stateroot.clone()),
                        kargs: None,
                        quiet: a.quiet || a.common.json,
                        pull,
                    },
                )?)
            };
            let out = UpgradeOutput { check, deployed };
            print(a.common.json, &out, || {
                let mut s = out.check.to_text();
                if let Some(d) = &out.deployed {
                    s.push_str(&d.to_text());
                } else if a.check && out.check.update_available {
                    s.push_str("  (--check: nothing pulled; run `ostree-container upgrade` to deploy it)\n");
                }
                s
            });
            Ok(0)
        }
        MachineCommand::Status(a) => {
            let m = Machine::open(&a.sysroot)?;
            let s = status::status(&m)?;
            print(a.json, &s, || s.to_text());
            Ok(0)
        }
    }
}
