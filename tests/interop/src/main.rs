//! Test helper for `tests/it/encapsulate/`: the same operations done by ostree-rs-ext
//! (crate `ostree-ext` 0.15), so each side's output can be read by the other.
//!
//! Usage (every command prints one line: a commit checksum or "ok"):
//! - `encapsulate REPO REV IMGREF [--label K=V]...`
//! - `unencapsulate REPO OSTREE-IMGREF`
//! - `tar-export REPO REV FILE`
//! - `tar-import REPO FILE`

use anyhow::{bail, Context, Result};
use ostree_ext::container::{self, Config, ImageReference, OstreeImageReference};
use ostree_ext::ostree;
use std::collections::BTreeMap;

fn open_repo(path: &str) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(ostree::gio::Cancellable::NONE)
        .with_context(|| format!("opening {path}"))?;
    Ok(repo)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["encapsulate", repo, rev, imgref, rest @ ..] => {
            let repo = open_repo(repo)?;
            let mut labels = BTreeMap::new();
            let mut it = rest.iter();
            while let Some(opt) = it.next() {
                match *opt {
                    "--label" => {
                        let kv = it.next().context("--label needs K=V")?;
                        let (k, v) = kv.split_once('=').context("--label needs K=V")?;
                        labels.insert(k.to_string(), v.to_string());
                    }
                    o => bail!("unknown option {o}"),
                }
            }
            let dest: ImageReference = imgref.parse()?;
            let config = Config {
                labels: Some(labels),
                cmd: None,
            };
            let digest = container::encapsulate(&repo, rev, &config, None, &dest).await?;
            println!("{digest}");
        }
        ["unencapsulate", repo, imgref] => {
            let repo = open_repo(repo)?;
            let imgref: OstreeImageReference = imgref.parse()?;
            let r = container::unencapsulate(&repo, &imgref).await?;
            println!("{}", r.ostree_commit);
        }
        ["tar-export", repo, rev, file] => {
            let repo = open_repo(repo)?;
            let f = std::fs::File::create(file)?;
            ostree_ext::tar::export_commit(&repo, rev, std::io::BufWriter::new(f), None)?;
            println!("ok");
        }
        ["tar-import", repo, file] => {
            let repo = open_repo(repo)?;
            let f = tokio::fs::File::open(file).await?;
            let c = ostree_ext::tar::import_tar(&repo, f, None).await?;
            println!("{c}");
        }
        _ => bail!("usage: see the module documentation"),
    }
    Ok(())
}
