//! Host side: import a finished OCI image into an ostree repository (placeholder until the
//! exporter lands).

pub mod cli;

pub fn run(cmd: cli::HostCommand) -> anyhow::Result<u8> {
    match cmd {}
}
