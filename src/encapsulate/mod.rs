//! Encapsulation: an ostree commit to an OCI image and back (placeholder until it lands).

pub mod cli;

pub fn run(cmd: cli::EncapsulateCommand) -> anyhow::Result<u8> {
    match cmd {}
}
