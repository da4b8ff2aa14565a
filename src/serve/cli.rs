//! The `serve` subcommand, flattened into the top-level CLI.

#[derive(Debug, clap::Subcommand)]
pub enum ServeCommand {}
