//! What `commit` and `lint` tell the user: actions taken, findings, counts; as text lines or as
//! one JSON document (schema in docs/commit.md).
//!
//! A finding is data ("this is wrong, here is the fix"); an error while checking is a finding
//! too (check name, severity error, message "could not check: …"), so one broken check never
//! hides the others.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
/// How bad a finding is: errors fail `commit` and `lint`.
pub enum Severity {
    /// Fatal: the image will not work correctly on an ostree machine.
    Error,
    /// Works, but something is lost or surprising on machines that already run the OS.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`, as printed and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
/// A problem found: by a check, by the plan, or a change that failed.
pub struct Finding {
    /// The check's name (kebab-case), as listed by `lint --list`.
    pub check: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Every path concerned, absolute in the image, sorted.
    pub paths: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// One line saying how to fix it.
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
/// A change made (or, with `--dry-run`, planned).
pub struct Action {
    /// What was done: `remove`, `move`, `factory-copy`, `write`, `drop-shadow-entry`, ...
    pub action: &'static str,
    /// The image path changed.
    pub path: String,
    /// What was done, with the lines written.
    pub detail: String,
    /// For `write` with `--dry-run`: the lines the file would have (comments left out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
/// Totals printed on the last line and in JSON.
pub struct Counts {
    /// Number of actions.
    pub actions: usize,
    /// Number of error findings.
    pub errors: usize,
    /// Number of warning findings.
    pub warnings: usize,
}

/// The version of the JSON documents' shape: raised when a field changes meaning or goes away
/// (new fields may appear without it). Shared by every command that prints JSON.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
/// The output of `commit` and `lint`, as text or as the JSON document described in docs/commit.md.
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `ostree-container`.
    pub tool: &'static str,
    /// The tool's version.
    pub version: &'static str,
    /// `commit` or `lint`.
    pub command: &'static str,
    /// The root looked at, as given.
    pub root: String,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Changes made or planned.
    pub actions: Vec<Action>,
    /// Problems found, sorted.
    pub findings: Vec<Finding>,
    /// Totals.
    pub counts: Counts,
    /// Show every path of a finding in text output (`--no-truncate`).
    #[serde(skip)]
    pub no_truncate: bool,
}

/// How many paths a finding shows in text output; JSON always has all of them.
const TEXT_PATHS: usize = 10;

impl Report {
    /// An empty report for `command` on `root`.
    pub fn new(command: &'static str, root: String, dry_run: bool) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "ostree-container",
            version: env!("CARGO_PKG_VERSION"),
            command,
            root,
            dry_run,
            actions: Vec::new(),
            findings: Vec::new(),
            counts: Counts::default(),
            no_truncate: false,
        }
    }

    /// Sort findings (errors first, then by check and path), report one problem once (the same
    /// paths and message found by two checks), and fill in the counts.
    pub fn finish(&mut self) {
        for f in &mut self.findings {
            f.paths.sort();
            f.paths.dedup();
        }
        self.findings
            .sort_by(|a, b| (a.severity, a.check, &a.paths).cmp(&(b.severity, b.check, &b.paths)));
        let mut seen = std::collections::BTreeSet::new();
        self.findings
            .retain(|f| seen.insert((f.paths.clone(), f.message.clone())));
        self.counts = Counts {
            actions: self.actions.len(),
            errors: self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count(),
            warnings: self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count(),
        };
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// The text output (long path lists truncated unless `no_truncate`).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let verb_prefix = if self.dry_run { "would " } else { "" };
        for a in &self.actions {
            s.push_str(&format!("{verb_prefix}{} {}", a.action, a.path));
            if !a.detail.is_empty() {
                s.push_str(&format!(": {}", a.detail));
            }
            s.push('\n');
            for l in &a.lines {
                s.push_str(&format!("    {l}\n"));
            }
        }
        let shown = if self.no_truncate {
            usize::MAX
        } else {
            TEXT_PATHS
        };
        for f in &self.findings {
            s.push_str(&format!(
                "{}[{}]: {}\n",
                f.severity.as_str(),
                f.check,
                f.message
            ));
            for p in f.paths.iter().take(shown) {
                s.push_str(&format!("  {p:?}\n"));
            }
            if f.paths.len() > shown {
                s.push_str(&format!(
                    "  … and {} more (all of them with --no-truncate or --json)\n",
                    f.paths.len() - shown
                ));
            }
            s.push_str(&format!("  fix: {}\n", f.fix));
        }
        s.push_str(&format!(
            "{}: {} action{}{}, {} error{}, {} warning{}\n",
            self.command,
            self.counts.actions,
            if self.counts.actions == 1 { "" } else { "s" },
            if self.dry_run { " planned" } else { "" },
            self.counts.errors,
            if self.counts.errors == 1 { "" } else { "s" },
            self.counts.warnings,
            if self.counts.warnings == 1 { "" } else { "s" },
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_truncates_paths_json_keeps_all() {
        let mut r = Report::new("lint", "/".into(), false);
        r.findings.push(Finding {
            check: "special-files",
            severity: Severity::Error,
            paths: (0..12).map(|i| format!("/srv/fifo{i:02}")).collect(),
            message: "12 files ostree cannot store".into(),
            fix: "remove them".into(),
        });
        r.findings.push(Finding {
            check: "boot-empty",
            severity: Severity::Warning,
            paths: vec!["/boot/x".into()],
            message: "m".into(),
            fix: "f".into(),
        });
        r.finish();
        let t = r.to_text();
        assert!(t.contains("error[special-files]: 12 files"), "{t}");
        assert!(t.contains("… and 2 more"), "{t}");
        assert!(t.ends_with("lint: 0 actions, 1 error, 1 warning\n"), "{t}");
        r.no_truncate = true;
        assert!(r.to_text().contains("/srv/fifo11"));
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["findings"][0]["paths"].as_array().unwrap().len(), 12);
        assert_eq!(j["counts"]["errors"], 1);
        assert_eq!(j["schema_version"], SCHEMA_VERSION);
        assert_eq!(j["findings"][1]["severity"], "warning");
    }
}
