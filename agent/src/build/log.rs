//! Job logs: one file per job (`logs/BUILD/JOB.log`), a timestamp per line,
//! ANSI colours kept, capped with the head and the tail kept, and a live feed
//! for SSE followers. Every line is masked here, before it reaches the file
//! or a follower, so no caller can forget to.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use tokio::sync::broadcast;

use super::output::Masker;

/// Lines of the tail kept in memory once the head cap is reached.
const TAIL_LINES: usize = 2000;
/// Longest line kept; longer ones are cut (binary junk often has no newlines).
const MAX_LINE: usize = 16 * 1024;

/// One line as followers see it: its number (1-based) and its text.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: u64,
    pub text: String,
}

/// A job's log while the job runs.
pub struct JobLog {
    path: PathBuf,
    state: Mutex<State>,
    feed: broadcast::Sender<Line>,
    /// The job's secrets and `::add-mask::` values.
    masker: RwLock<Masker>,
}

struct State {
    file: Option<std::fs::File>,
    written: u64,
    cap: u64,
    lines: u64,
    /// Lines past the cap; the last `TAIL_LINES` are written at the end.
    tail: VecDeque<String>,
    omitted: u64,
}

impl JobLog {
    /// Creates (truncating) the log file.
    pub fn create(path: &Path, cap_bytes: u64) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(path)?;
        let (feed, _) = broadcast::channel(4096);
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                file: Some(file),
                written: 0,
                cap: cap_bytes,
                lines: 0,
                tail: VecDeque::new(),
                omitted: 0,
            }),
            feed,
            masker: RwLock::new(Masker::default()),
        })
    }

    /// Masks `value` (and its forms) in every later line.
    pub fn add_mask(&self, value: &str) {
        self.masker
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(value);
    }

    /// The masker, for text that goes elsewhere (SQLite, API responses).
    pub fn masker(&self) -> std::sync::RwLockReadGuard<'_, Masker> {
        self.masker.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Line> {
        self.feed.subscribe()
    }

    /// Number of lines so far.
    pub fn lines(&self) -> u64 {
        self.state.lock().map(|s| s.lines).unwrap_or(0)
    }

    /// Masks and appends one line; returns its number.
    pub fn line(&self, text: &str) -> u64 {
        let mut text: String = self.masker().mask(text.trim_end_matches(['\n', '\r']));
        if text.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str(" [line cut]");
        }
        let stamped = format!(
            "{} {text}\n",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.lines += 1;
        let number = state.lines;
        if state.written + stamped.len() as u64 <= state.cap {
            state.written += stamped.len() as u64;
            if let Some(file) = state.file.as_mut()
                && let Err(e) = file.write_all(stamped.as_bytes())
            {
                tracing::warn!(path = %self.path.display(), "cannot write log: {e}");
            }
        } else {
            state.tail.push_back(stamped);
            if state.tail.len() > TAIL_LINES {
                state.tail.pop_front();
                state.omitted += 1;
            }
        }
        drop(state);
        let _ = self.feed.send(Line { number, text });
        number
    }

    /// Writes the kept tail and closes the file.
    pub fn finish(&self) {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tail: Vec<String> = state.tail.drain(..).collect();
        let omitted = state.omitted;
        if let Some(mut file) = state.file.take() {
            if !tail.is_empty() {
                let _ = writeln!(
                    file,
                    "[... log capped: {omitted} lines omitted; the last {} follow ...]",
                    tail.len()
                );
            }
            for line in tail {
                let _ = file.write_all(line.as_bytes());
            }
            let _ = file.sync_all();
        }
    }
}

/// The lines of a finished (or running) job's log file, without timestamps
/// when `raw` is false.
pub fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read(path)?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// A stored line without its timestamp.
pub fn strip_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((stamp, rest)) if stamp.len() == 24 && stamp.ends_with('Z') => rest,
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_keep_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.log");
        let log = JobLog::create(&path, 2000).unwrap();
        for i in 0..5000 {
            log.line(&format!("line {i}"));
        }
        log.finish();
        let lines = read_lines(&path).unwrap();
        assert_eq!(strip_timestamp(&lines[0]), "line 0");
        assert!(lines.iter().any(|l| l.contains("log capped")));
        assert_eq!(strip_timestamp(lines.last().unwrap()), "line 4999");
        assert!(lines.len() < 2100);
    }

    #[test]
    fn lines_are_masked_for_the_file_and_followers() {
        let dir = tempfile::tempdir().unwrap();
        let log = JobLog::create(&dir.path().join("job.log"), 1 << 20).unwrap();
        let mut follower = log.subscribe();
        log.add_mask("hunter2");
        log.line("password: hunter2");
        log.finish();
        assert_eq!(follower.try_recv().unwrap().text, "password: ***");
        let lines = read_lines(log.path()).unwrap();
        assert_eq!(strip_timestamp(&lines[0]), "password: ***");
    }

    #[test]
    fn long_binary_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = JobLog::create(&dir.path().join("job.log"), 1 << 30).unwrap();
        let junk = String::from_utf8_lossy(&vec![0xffu8; 100_000]).into_owned();
        log.line(&junk);
        log.finish();
        let lines = read_lines(log.path()).unwrap();
        assert!(lines[0].len() < 60_000 && lines[0].ends_with("[line cut]"));
    }
}
