//! Serving an ostree repository (or the commit inside an image) over HTTP (placeholder until it
//! lands).

pub mod cli;

pub fn run(cmd: cli::ServeCommand) -> anyhow::Result<u8> {
    match cmd {}
}
