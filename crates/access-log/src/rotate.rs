//! A log file that rotates by renaming, as log shippers expect.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::AccessLogError;

/// When to start a new file; the old one is renamed aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// One ever-growing file.
    Never,
    /// Before a line would take the file past this many bytes; rotated files
    /// are numbered `.1` (newest) to `.N`.
    Size(u64),
    /// Every second, minute, hour or day, or at UTC midnight; rotated files
    /// carry the start of their period as a suffix.
    Interval(Interval),
}

/// The period of time-based rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Every second.
    Second,
    /// Every minute.
    Minute,
    /// Every hour.
    Hour,
    /// Every 24 hours from opening.
    Day,
    /// At each UTC midnight.
    Midnight,
}

impl FromStr for Interval {
    type Err = AccessLogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "s" => Interval::Second,
            "m" => Interval::Minute,
            "h" => Interval::Hour,
            "d" => Interval::Day,
            "midnight" => Interval::Midnight,
            _ => return Err(AccessLogError::BadInterval(s.to_owned())),
        })
    }
}

impl Interval {
    fn next_after(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Interval::Second => start + Duration::seconds(1),
            Interval::Minute => start + Duration::minutes(1),
            Interval::Hour => start + Duration::hours(1),
            Interval::Day => start + Duration::days(1),
            Interval::Midnight => {
                let tomorrow = start.date_naive() + Duration::days(1);
                Utc.from_utc_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default())
            }
        }
    }

    fn suffix(self, start: DateTime<Utc>) -> String {
        let format = match self {
            Interval::Second => "%Y-%m-%d_%H-%M-%S",
            Interval::Minute => "%Y-%m-%d_%H-%M",
            Interval::Hour => "%Y-%m-%d_%H",
            Interval::Day | Interval::Midnight => "%Y-%m-%d",
        };
        start.format(format).to_string()
    }
}

#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    backup_count: usize,
    period_start: DateTime<Utc>,
}

fn open_append(path: &Path) -> Result<File, AccessLogError> {
    let open_error = |source| AccessLogError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(open_error)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

impl RotatingFile {
    pub(crate) fn open(
        path: PathBuf,
        rotation: Rotation,
        backup_count: usize,
    ) -> Result<Self, AccessLogError> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            rotation,
            backup_count,
            period_start: Utc::now(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one complete line, rotating first if it is due.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> Result<(), AccessLogError> {
        let now = Utc::now();
        match &self.rotation {
            Rotation::Never => {}
            Rotation::Size(max) => {
                let over = self.size > 0 && self.size + line.len() as u64 > *max;
                if over && self.backup_count > 0 {
                    self.rotate_numbered()?;
                }
            }
            Rotation::Interval(interval) => {
                if now >= interval.next_after(self.period_start) {
                    let suffix = interval.suffix(self.period_start);
                    self.rotate_to(&with_suffix(&self.path, &suffix))?;
                    self.prune_timed()?;
                    self.period_start = now;
                }
            }
        }
        // One write per line on an append-mode file: concurrent writers in
        // this process are serialised by the caller's lock, and the kernel
        // appends each write whole.
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate_to(&mut self, target: &Path) -> Result<(), AccessLogError> {
        self.file.flush()?;
        std::fs::rename(&self.path, target)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn rotate_numbered(&mut self) -> Result<(), AccessLogError> {
        let numbered = |n: usize| with_suffix(&self.path, &n.to_string());
        let oldest = numbered(self.backup_count);
        if oldest.exists() {
            std::fs::remove_file(&oldest)?;
        }
        for n in (1..self.backup_count).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        self.rotate_to(&numbered(1))
    }

    /// Keeps the newest `backup_count` time-suffixed files.
    fn prune_timed(&self) -> Result<(), AccessLogError> {
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Some(stem) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let prefix = format!("{stem}.");
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        // Suffixes are timestamps that sort chronologically as text.
        rotated.sort();
        let excess = rotated.len().saturating_sub(self.backup_count);
        for old in &rotated[..excess] {
            std::fs::remove_file(old)?;
        }
        Ok(())
    }
}
