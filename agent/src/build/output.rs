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

/// Replaces secret values in output with `***`.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    values: Vec<String>,
}

impl Masker {
    /// Masks `value`, and the forms it takes in output: each of its lines,
    /// its base64 and its JSON-escaped text.
    pub fn add(&mut self, value: &str) {
        use base64::Engine as _;
        let mut forms = vec![value.to_owned()];
        forms.extend(value.lines().map(str::to_owned));
        forms.push(base64::engine::general_purpose::STANDARD.encode(value));
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json.trim_matches('"').to_owned());
        }
        for form in forms {
            // Very short values would mask half the log; GitHub skips them too.
            if form.trim().len() >= 3 && !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        // Longest first, so a value is not half-masked by a shorter one inside it.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
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
    }
}
