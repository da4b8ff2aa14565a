//! The one error type of the line-based formats read here (passwd, group, tmpfiles.d,
//! sysusers.d): it names the file and the line, so the user can go and fix it.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{file}:{line}: {reason}")]
/// A line of a configuration file that could not be read, named by file and line.
pub struct ParseError {
    /// The file, as an image path.
    pub file: String,
    /// The line number, from 1.
    pub line: usize,
    /// Why the line was not understood.
    pub reason: String,
}

impl ParseError {
    /// A parse error at `file`, line `line`.
    pub fn new(file: &str, line: usize, reason: impl Into<String>) -> Self {
        ParseError {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }
}
