//! GitHub's filter patterns for branches, tags and paths.
//!
//! `*` matches within one path segment, `**` across segments (`**/` also
//! matches no directory at all), `?` makes the preceding character optional,
//! `+` repeats it, `[a-z]` is a class and `\` escapes. A leading `!` negates a
//! pattern in a list; the last pattern that matches decides. `globset` is not
//! used because its `?` and `+` mean something else.

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    Class(Vec<(char, char)>),
    Star,
    Any,
    AnyDirs,
    Optional(char),
    Plus(Box<Tok>),
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles a pattern (without a leading `!`).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "pattern is longer than {MAX_PATTERN_LEN} characters"
            ));
        }
        let mut toks: Vec<Tok> = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let tok = match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        Tok::AnyDirs
                    } else {
                        Tok::Any
                    }
                }
                '*' => Tok::Star,
                '?' | '+' => {
                    let previous = toks.pop();
                    match (c, previous) {
                        ('?', Some(Tok::Char(p))) => Tok::Optional(p),
                        ('+', Some(p @ (Tok::Char(_) | Tok::Class(_)))) => Tok::Plus(Box::new(p)),
                        _ => {
                            return Err(format!(
                                "`{c}` must follow a character or a [class]; escape it as `\\{c}`"
                            ));
                        }
                    }
                }
                '[' => {
                    let mut ranges = Vec::new();
                    loop {
                        match chars.next() {
                            None => return Err("`[` is never closed with `]`".to_owned()),
                            Some(']') if !ranges.is_empty() => break,
                            Some(lo) => {
                                let lo = if lo == '\\' {
                                    chars.next().unwrap_or('\\')
                                } else {
                                    lo
                                };
                                let mut lookahead = chars.clone();
                                if lookahead.next() == Some('-')
                                    && lookahead.peek().is_some_and(|c| *c != ']')
                                {
                                    chars.next();
                                    let hi = chars.next().unwrap_or(lo);
                                    if hi < lo {
                                        return Err(format!("range `{lo}-{hi}` is reversed"));
                                    }
                                    ranges.push((lo, hi));
                                } else {
                                    ranges.push((lo, lo));
                                }
                            }
                        }
                    }
                    Tok::Class(ranges)
                }
                '\\' => Tok::Char(chars.next().ok_or("pattern ends with a lone `\\`")?),
                c => Tok::Char(c),
            };
            toks.push(tok);
        }
        Ok(Glob { toks })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let mut memo = vec![None; (self.toks.len() + 1) * (text.len() + 1)];
        self.at(0, 0, &text, &mut memo)
    }

    fn at(&self, t: usize, s: usize, text: &[char], memo: &mut Vec<Option<bool>>) -> bool {
        let Some(tok) = self.toks.get(t) else {
            return s == text.len();
        };
        let key = t * (text.len() + 1) + s;
        if let Some(known) = memo[key] {
            return known;
        }
        let result = match tok {
            Tok::Char(_) | Tok::Class(_) => {
                text.get(s).is_some_and(|c| one(tok, *c)) && self.at(t + 1, s + 1, text, memo)
            }
            Tok::Optional(c) => {
                self.at(t + 1, s, text, memo)
                    || (text.get(s) == Some(c) && self.at(t + 1, s + 1, text, memo))
            }
            Tok::Plus(inner) => (s..text.len())
                .take_while(|&k| one(inner, text[k]))
                .any(|k| self.at(t + 1, k + 1, text, memo)),
            Tok::Star => {
                let end = text[s..]
                    .iter()
                    .position(|c| *c == '/')
                    .map_or(text.len(), |p| s + p);
                (s..=end).any(|k| self.at(t + 1, k, text, memo))
            }
            Tok::Any => (s..=text.len()).any(|k| self.at(t + 1, k, text, memo)),
            Tok::AnyDirs => {
                self.at(t + 1, s, text, memo)
                    || (s..text.len()).any(|k| text[k] == '/' && self.at(t + 1, k + 1, text, memo))
            }
        };
        memo[key] = Some(result);
        result
    }
}

fn one(tok: &Tok, c: char) -> bool {
    match tok {
        Tok::Char(x) => *x == c,
        Tok::Class(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)),
        _ => false,
    }
}

/// An ordered list of patterns, some negated with `!`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    patterns: Vec<(bool, Glob)>,
}

impl Filter {
    /// Compiles every pattern; the error names the first bad one.
    pub fn new(patterns: &[String]) -> Result<Filter, String> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let (negated, body) = p
                    .strip_prefix('!')
                    .map_or((false, p.as_str()), |b| (true, b));
                Glob::new(body)
                    .map(|g| (negated, g))
                    .map_err(|e| format!("bad pattern `{p}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Filter { patterns })
    }

    /// Whether the last pattern matching `text` is a positive one.
    pub fn matches(&self, text: &str) -> bool {
        self.patterns
            .iter()
            .rev()
            .find(|(_, g)| g.matches(text))
            .is_some_and(|(negated, _)| !negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).expect("valid pattern").matches(text)
    }

    #[test]
    fn githubs_documented_examples() {
        // From GitHub's "Filter pattern cheat sheet".
        assert!(m("feature/*", "feature/my-branch") && !m("feature/*", "feature/your/branch"));
        assert!(m("feature/**", "feature/beta-a/my-branch") && m("feature/**", "feature/"));
        assert!(m("main", "main") && !m("main", "main2"));
        assert!(m("v2*", "v2") && m("v2*", "v2.0") && m("v2*", "v2.9"));
        assert!(m("v[12].[0-9]+.[0-9]+", "v1.10.1") && m("v[12].[0-9]+.[0-9]+", "v2.0.0"));
        assert!(!m("v[12].[0-9]+.[0-9]+", "v3.0.0") && !m("v[12].[0-9]+.[0-9]+", "v1..0"));
        assert!(m("*.jsx?", "page.js") && m("*.jsx?", "page.jsx") && !m("*.jsx?", "src/page.js"));
        assert!(m("**.js", "index.js") && m("**.js", "js/index.js") && m("**.js", "src/js/app.js"));
        assert!(m("docs/*", "docs/README.md") && !m("docs/*", "docs/mona/octocat.txt"));
        assert!(m("docs/**", "docs/mona/octocat.txt"));
        assert!(m("**/README.md", "README.md") && m("**/README.md", "js/README.md"));
        assert!(m("**/*src/**", "a/src/app.js") && m("**/*src/**", "my-src/code/js/app.js"));
        assert!(m("*", "main") && !m("*", "releases/v1"));
        assert!(m("'*'", "'x'"), "quotes are ordinary characters");
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("+x").is_err());
        assert!(Glob::new("[z-a]").is_err());
        assert!(Glob::new("x\\").is_err());
        assert!(Glob::new("\\*").expect("escaped").matches("*"));
    }

    #[test]
    fn last_match_decides() {
        let f = Filter::new(&["releases/**".into(), "!releases/**-alpha".into()]).expect("valid");
        assert!(f.matches("releases/10"));
        assert!(!f.matches("releases/10-alpha"));
        assert!(!f.matches("main"));
        let f = Filter::new(&[
            "sub-project/**".into(),
            "!sub-project/docs/**".into(),
            "sub-project/docs/api.md".into(),
        ])
        .expect("valid");
        assert!(f.matches("sub-project/docs/api.md") && !f.matches("sub-project/docs/x.md"));
    }

    proptest! {
        #[test]
        fn never_panics_and_literals_match_themselves(pattern in "[a-z*?+\\[\\]!/.\\\\-]{0,30}", text in "[a-z/.-]{0,30}") {
            if let Ok(g) = Glob::new(&pattern) {
                let _ = g.matches(&text);
            }
            prop_assert!(Glob::new(&text).expect("plain text").matches(&text));
        }
    }
}
