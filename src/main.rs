//! `ostree-container`: entry point. Only dispatches; the work lives in the library modules.
//!
//! The same binary is reached three ways, all handled by [`ostree_container::cli::normalize_args`]:
//! `ostree-container <verb> …`, libostree's dispatch (`/usr/libexec/libostree/ext/ostree-container
//! container <verb> …` for `ostree container <verb>`), and installed or bind-mounted as `ostree`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    ostree_container::cli::init_logging();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match ostree_container::cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
