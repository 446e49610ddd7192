//! The checked-in ledgers of results we expect: known failures and allowed skips.
//!
//! Both files share one line format:
//!
//! ```text
//! <transport-glob> <test-glob>  # reason (required)
//! ```
//!
//! Blank lines and lines starting with `#` are ignored.  `*` matches any run
//! of characters and `?` any single one, so `* TestCancel::*` covers a whole
//! class on every transport.  Test ids are `category.name` for `cli-*`
//! transports (the names `vgi-rpc-test --list` prints) and `Class::test` for
//! the pytest transports (the node id without file and parameter).
//!
//! The reason is mandatory because an entry without one cannot be reviewed
//! or retired later.

use std::cell::Cell;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

/// One parsed line of a ledger.
#[derive(Debug)]
pub(crate) struct Entry {
    transport: String,
    test: String,
    /// The explanation after `#`, shown next to every result the entry covers.
    pub(crate) reason: String,
    /// `file:line`, so diagnostics point at the line to edit.
    pub(crate) origin: String,
    /// Whether any result matched, to flag entries that have gone stale.
    used: Cell<bool>,
}

/// A parsed ledger file.
#[derive(Debug)]
pub(crate) struct Ledger {
    entries: Vec<Entry>,
}

impl Ledger {
    /// Load `path`; a missing file is an empty ledger, any malformed line an error.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        Self::parse(path, &text)
    }

    /// Parse `text`, naming `path` in diagnostics.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let origin = format!("{}:{}", path.display(), index + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((pattern, reason)) = line.split_once('#') else {
                bail!("{origin}: missing `# reason` in {line:?}");
            };
            let reason = reason.trim();
            let fields: Vec<&str> = pattern.split_whitespace().collect();
            let [transport, test] = fields[..] else {
                bail!("{origin}: expected `<transport> <test>  # reason`, got {line:?}");
            };
            if reason.is_empty() {
                bail!("{origin}: the reason after `#` is empty");
            }
            entries.push(Entry {
                transport: transport.to_owned(),
                test: test.to_owned(),
                reason: reason.to_owned(),
                origin,
                used: Cell::new(false),
            });
        }
        Ok(Self { entries })
    }

    /// The first entry covering `test` on `transport`, marking it used.
    pub(crate) fn find(&self, transport: &str, test: &str) -> Option<&Entry> {
        let entry = self
            .entries
            .iter()
            .find(|e| glob_match(&e.transport, transport) && glob_match(&e.test, test))?;
        entry.used.set(true);
        Some(entry)
    }

    /// Entries for one of `transports` that no result matched: probably fixed
    /// or renamed tests whose lines should go.
    pub(crate) fn unused<'a>(
        &'a self,
        transports: &'a [String],
    ) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(move |e| {
            !e.used.get() && transports.iter().any(|t| glob_match(&e.transport, t))
        })
    }
}

/// Shell-style wildcard match of the whole `text`: `*` any run, `?` one character.
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much text it has swallowed so far, for backtracking.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether `pattern` uses wildcards (and so is meant as a glob, not a plain word).
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("scalar_echo.*", "scalar_echo.echo_string"));
        assert!(glob_match(
            "*::test_echo_?nt",
            "TestUnaryScalarEcho::test_echo_int"
        ));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-b-b-d"));
        assert!(!glob_match("scalar_echo", "scalar_echo.echo_string"));
        assert!(!glob_match("pipe", "subprocess"));
    }

    #[test]
    fn parses_entries_and_rejects_missing_reasons() {
        let text =
            "# header\n\ncli-pipe  http_response_cap.*   # HTTP only\n* TestCancel::* # not yet\n";
        let ledger = Ledger::parse(Path::new("f.txt"), text).unwrap();
        let entry = ledger
            .find("cli-pipe", "http_response_cap.unary_strict_fail")
            .unwrap();
        assert_eq!(entry.reason, "HTTP only");
        assert_eq!(entry.origin, "f.txt:3");
        assert!(ledger.find("subprocess", "TestCancel::test_x").is_some());
        assert!(ledger.find("pipe", "TestOther::test_x").is_none());
        assert_eq!(ledger.unused(&["pipe".to_owned()]).count(), 0);

        let stale = Ledger::parse(Path::new("f.txt"), "pipe TestGone::*  # fixed?\n").unwrap();
        assert_eq!(stale.unused(&["pipe".to_owned()]).count(), 1);
        assert_eq!(stale.unused(&["cli-pipe".to_owned()]).count(), 0);

        assert!(Ledger::parse(Path::new("f.txt"), "pipe TestX::y\n").is_err());
        assert!(Ledger::parse(Path::new("f.txt"), "pipe TestX::y #   \n").is_err());
        assert!(Ledger::parse(Path::new("f.txt"), "TestX::y # one field\n").is_err());
    }
}
