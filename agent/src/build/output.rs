//! What a step prints: workflow commands (`::add-mask::`, `::group::`,
//! `::error file=..,line=..::`), compiler diagnostics (`file:line:col: error:`
//! as xcodebuild and swiftc print them), and masking of secret values.

use hangar_core::store::builds::Annotation;

/// A workflow command found in a line of output.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Mask(String),
    Group(String),
    EndGroup,
    Annotate(Annotation),
}

/// Parses `::name key=value,...::message` lines and compiler diagnostics.
pub fn parse(line: &str) -> Option<Command> {
    if let Some(rest) = line.strip_prefix("::") {
        let (head, message) = rest.split_once("::")?;
        let (name, props) = head.split_once(' ').unwrap_or((head, ""));
        return match name {
            "add-mask" => {
                Some(Command::Mask(message.to_owned())).filter(|_| !message.trim().is_empty())
            }
            "group" => Some(Command::Group(message.to_owned())),
            "endgroup" => Some(Command::EndGroup),
            "error" | "warning" | "notice" => {
                let mut annotation = Annotation {
                    level: name.to_owned(),
                    message: unescape(message),
                    file: None,
                    line: None,
                    log_line: None,
                };
                for prop in props.split(',') {
                    match prop.trim().split_once('=') {
                        Some(("file", file)) => annotation.file = Some(unescape(file)),
                        Some(("line", line)) => annotation.line = line.parse().ok(),
                        _ => {}
                    }
                }
                Some(Command::Annotate(annotation))
            }
            _ => None,
        };
    }
    compiler_diagnostic(line).map(Command::Annotate)
}

/// `path/File.swift:12:5: error: message` (clang, swiftc, xcodebuild).
fn compiler_diagnostic(line: &str) -> Option<Annotation> {
    for level in ["error", "warning"] {
        let marker = format!(": {level}: ");
        let Some(at) = line.find(&marker) else {
            continue;
        };
        let location = &line[..at];
        let mut parts = location.rsplitn(3, ':');
        let (Some(col), Some(row), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if col.parse::<u32>().is_err()
            || file.is_empty()
            || file.contains(' ') && !file.contains('/')
        {
            continue;
        }
        return Some(Annotation {
            level: level.to_owned(),
            message: line[at + marker.len()..].to_owned(),
            file: Some(file.to_owned()),
            line: row.parse().ok(),
            log_line: None,
        });
    }
    None
}

/// GitHub's escaping of workflow command data.
fn unescape(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Shortest form masked: very short values would mask half the log (GitHub
/// skips them too).
const MIN_FORM: usize = 3;
/// Shortest base64 fragment masked on its own (a few letters are everywhere).
const MIN_BASE64: usize = 8;
/// `base64` (coreutils) wraps its output at this width.
const BASE64_WRAP: usize = 76;

/// Replaces secret values in output with `***`.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    /// Every form of every value, longest first.
    values: Vec<String>,
}

impl Masker {
    /// Masks `value`, and the forms it takes in output: each of its lines,
    /// its base64 (also as `echo | base64` prints it, wrapped at 76 columns,
    /// and inside a longer encoded text) and its JSON-escaped text.
    pub fn add(&mut self, value: &str) {
        let mut forms = vec![value.to_owned()];
        forms.extend(value.lines().map(str::to_owned));
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json.trim_matches('"').to_owned());
        }
        let mut encoded = Vec::new();
        for text in [value.to_owned(), format!("{value}\n")] {
            let full = base64_of(text.as_bytes());
            encoded.extend(wrapped(&full));
            encoded.push(full);
        }
        encoded.extend(base64_cores(value.as_bytes()));
        forms.extend(encoded.into_iter().filter(|f| f.len() >= MIN_BASE64));
        for form in forms {
            if form.trim().len() >= MIN_FORM && !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        // Longest first, so a value is not half-masked by a shorter one inside it.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn mask(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }

    /// How much of `text` (output not yet ended by a newline) can be written
    /// now: the rest may be the start of a secret that the next write
    /// completes, or part of one that the cut would split.
    pub fn safe_prefix(&self, text: &[u8]) -> usize {
        let mut cut = text.len();
        for form in &self.values {
            let form = form.as_bytes();
            if let Some(k) = (1..form.len().min(text.len() + 1))
                .rev()
                .find(|&k| text.ends_with(&form[..k]))
            {
                cut = cut.min(text.len() - k);
            }
        }
        // A whole value across the cut moves the cut to its start.
        let mut moved = true;
        while moved {
            moved = false;
            for form in &self.values {
                let form = form.as_bytes();
                let from = cut.saturating_sub(form.len() - 1);
                if let Some(start) =
                    (from..cut).find(|&s| text[s..].starts_with(form) && s + form.len() > cut)
                {
                    cut = start;
                    moved = true;
                }
            }
        }
        // Never split a UTF-8 character.
        while cut > 0 && cut < text.len() && (text[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        cut
    }
}

/// Turns one pipe's chunks of output into lines. Writes are reassembled
/// before masking, so a value written in pieces is still one value; a line
/// that grows past `soft` bytes without ending is cut where the masker says
/// no secret can be split, and past `soft * 16` bytes regardless.
pub struct Lines {
    pending: Vec<u8>,
    soft: usize,
}

/// One piece of output for the log.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// A whole line (may hold a workflow command).
    Line(String),
    /// The start of a line too long to keep waiting for.
    Part(String),
}

impl Lines {
    pub fn new(soft: usize) -> Self {
        Self {
            pending: Vec::new(),
            soft,
        }
    }

    pub fn push(&mut self, chunk: &[u8], masker: &Masker) -> Vec<Piece> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            out.push(Piece::Line(text(&line)));
        }
        if self.pending.len() > self.soft {
            let mut cut = masker.safe_prefix(&self.pending);
            if cut == 0 && self.pending.len() > self.soft * 16 {
                cut = self.pending.len();
            }
            if cut > 0 {
                let part: Vec<u8> = self.pending.drain(..cut).collect();
                out.push(Piece::Part(text(&part)));
            }
        }
        out
    }

    /// What is left when the pipe closes.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then(|| text(&rest))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The lines `base64` prints for a long encoded text.
fn wrapped(encoded: &str) -> Vec<String> {
    if encoded.len() <= BASE64_WRAP {
        return Vec::new();
    }
    encoded
        .as_bytes()
        .chunks(BASE64_WRAP)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The part of `value`'s base64 that is the same wherever the value sits in
/// a longer encoded text: for each of the three alignments, the characters
/// that depend on the value's bytes alone.
fn base64_cores(value: &[u8]) -> Vec<String> {
    (0..3usize)
        .filter_map(|offset| {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(value);
            let encoded = base64_of(&bytes);
            // Characters touched by the padding bytes in front, and the last
            // group, which depends on what follows the value.
            let skip = [0, 2, 3][offset];
            let whole = bytes.len() / 3 * 4;
            encoded.get(skip..whole).map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workflow_commands() {
        assert_eq!(
            parse("::add-mask::hunter2"),
            Some(Command::Mask("hunter2".into()))
        );
        assert_eq!(
            parse("::group::Build"),
            Some(Command::Group("Build".into()))
        );
        assert_eq!(parse("::endgroup::"), Some(Command::EndGroup));
        let Some(Command::Annotate(a)) = parse("::error file=App/main.swift,line=12::Boom%0Anext")
        else {
            panic!()
        };
        assert_eq!(
            (
                a.level.as_str(),
                a.file.as_deref(),
                a.line,
                a.message.as_str()
            ),
            ("error", Some("App/main.swift"), Some(12), "Boom\nnext")
        );
        assert_eq!(parse("plain output"), None);
        assert_eq!(parse("::unknown::x"), None);
    }

    #[test]
    fn parses_compiler_diagnostics() {
        let Some(Command::Annotate(a)) =
            parse("/src/App/View.swift:40:17: error: cannot find 'x' in scope")
        else {
            panic!()
        };
        assert_eq!(
            (a.file.as_deref(), a.line, a.message.as_str()),
            (
                Some("/src/App/View.swift"),
                Some(40),
                "cannot find 'x' in scope"
            )
        );
        assert!(parse("note: error: nothing").is_none());
    }

    #[test]
    fn masks_every_form_of_a_secret() {
        let mut masker = Masker::default();
        masker.add("s3cr3t\nline-two");
        assert_eq!(masker.mask("a s3cr3t b"), "a *** b");
        assert_eq!(masker.mask("line-two"), "***");
        assert_eq!(masker.mask("czNjcjN0CmxpbmUtdHdv"), "***");
        assert_eq!(masker.mask(r#"{"v":"s3cr3t\nline-two"}"#), r#"{"v":"***"}"#);
        // `echo "$S" | base64` encodes a newline after the value.
        let mut masker = Masker::default();
        masker.add("hunter2-hunter2");
        assert_eq!(masker.mask(&base64_of(b"hunter2-hunter2\n")), "***");
        // Inside a longer encoded text, at any alignment.
        for prefix in ["", "a", "ab"] {
            let encoded = base64_of(format!("{prefix}hunter2-hunter2 and more").as_bytes());
            assert!(masker.mask(&encoded).contains("***"), "{prefix:?}");
        }
    }

    #[test]
    fn wrapped_base64_lines_are_masked() {
        let value = "x".repeat(100);
        let mut masker = Masker::default();
        masker.add(&value);
        let encoded = base64_of(format!("{value}\n").as_bytes());
        for line in encoded.as_bytes().chunks(76) {
            let line = String::from_utf8_lossy(line);
            assert_eq!(masker.mask(&line), "***", "{line}");
        }
    }

    #[test]
    fn a_value_written_in_pieces_is_masked() {
        let mut masker = Masker::default();
        masker.add("secret");
        let mut lines = Lines::new(1024);
        assert!(lines.push(b"sec", &masker).is_empty());
        assert!(lines.push(b"ret", &masker).is_empty());
        assert_eq!(lines.finish().map(|l| masker.mask(&l)), Some("***".into()));
    }

    #[test]
    fn long_lines_are_cut_outside_secrets() {
        let mut masker = Masker::default();
        masker.add("0123456789");
        let mut lines = Lines::new(8);
        let pieces = lines.push(b"abcdefgh012345", &masker);
        assert_eq!(pieces, vec![Piece::Part("abcdefgh".into())]);
        let pieces = lines.push(b"6789 tail\n", &masker);
        assert_eq!(pieces, vec![Piece::Line("0123456789 tail".into())]);
    }

    proptest::proptest! {
        /// However a step's output is split into writes, and wherever long
        /// lines are cut, no form of a secret reaches the log.
        #[test]
        fn random_splits_never_leak(
            secret in "[A-Za-z0-9][A-Za-z0-9\"\\\\ ]{5,39}(\n[A-Za-z0-9]{6,12})?",
            before in "[a-z \n]{0,60}",
            after in "[a-z \n]{0,60}",
            form in 0usize..4,
            cuts in proptest::collection::vec(0usize..200, 0..12),
            soft in 16usize..64,
        ) {
            let mut masker = Masker::default();
            masker.add(&secret);
            let shown = match form {
                0 => secret.clone(),
                1 => base64_of(secret.as_bytes()),
                2 => serde_json::to_string(&secret).unwrap_or_default(),
                _ => base64_of(format!("{secret}\n").as_bytes()),
            };
            let output = format!("{before}{shown}{after}");
            let bytes = output.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut lines = Lines::new(soft);
            let mut logged = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                for piece in lines.push(&bytes[from..cut], &masker) {
                    let (Piece::Line(t) | Piece::Part(t)) = piece;
                    logged.push(masker.mask(&t));
                }
                from = cut;
            }
            logged.extend(lines.finish().map(|t| masker.mask(&t)));
            let log = logged.join("\n");
            for line in secret.lines().filter(|l| l.trim().len() >= MIN_FORM) {
                proptest::prop_assert!(!log.contains(line), "{line:?} leaked in {log:?}");
            }
            proptest::prop_assert!(!log.contains(&shown), "{shown:?} leaked in {log:?}");
            proptest::prop_assert!(log.contains("***"));
        }
    }
}
