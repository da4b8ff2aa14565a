//! The one error type of the line-based formats read here (passwd, group, tmpfiles.d,
//! sysusers.d): it names the file and the line, so the user can go and fix it.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{file}:{line}: {reason}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl ParseError {
    pub fn new(file: &str, line: usize, reason: impl Into<String>) -> Self {
        ParseError {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }
}
