//! GitHub Actions expressions: `${{ }}` templates, `if:` conditions, values.
//!
//! Pure: the runner hands in the contexts, the job status and, for
//! `hashFiles`, a [`FileHasher`]; nothing here touches the disk.

mod eval;
mod parse;

pub use parse::{Ast, CONTEXTS, MAX_DEPTH, MAX_LEN, parse};

use std::collections::BTreeMap;
use std::fmt;

/// A value as expressions see it; objects are looked up case-insensitively.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// GitHub's truthiness: `null`, `false`, `0`, `NaN` and `''` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// Coercion to a number: null 0, booleans 0/1, strings parsed, else NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => to_number(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// Looks a property up, case-insensitively as GitHub does.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Object(map) = self else {
            return None;
        };
        map.get(key).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }

    /// The value as JSON, integers without a fraction.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => (*n as i64).into(),
            Value::Number(n) => {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
            }
            Value::String(s) => s.as_str().into(),
            Value::Array(items) => items.iter().map(Value::to_json).collect(),
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

/// String coercion, used by `${{ }}` interpolation: null is `''`, arrays and
/// objects print as `Array` and `Object` as on GitHub.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) if n.is_nan() => f.write_str("NaN"),
            Value::Number(n) if n.is_infinite() => {
                f.write_str(if *n > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => f.write_str(s),
            Value::Array(_) => f.write_str("Array"),
            Value::Object(_) => f.write_str("Object"),
        }
    }
}

/// Parses a string as JavaScript's `Number()` does: trimmed, `''` is 0,
/// hex/octal/binary prefixes and `Infinity` accepted, anything else NaN.
pub fn to_number(text: &str) -> f64 {
    let t = text.trim();
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return u64::from_str_radix(digits, radix).map_or(f64::NAN, |n| n as f64);
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let plausible = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !plausible {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

/// An expression that cannot be parsed or evaluated; `offset` counts characters
/// from the start of the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression error at character {}: {message}", offset + 1)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl ExprError {
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> Self {
        ExprError {
            offset,
            message: message.into(),
        }
    }
}

/// The outcome so far, which `success()`, `failure()` and `cancelled()` read:
/// of earlier steps for a step's `if`, of the needed jobs for a job's `if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Success,
    Failure,
    Cancelled,
}

/// Computes `hashFiles(...)`: supplied by the runner, which owns the workspace.
pub trait FileHasher {
    /// Returns the hex digest of the files matching `patterns`, or `''` for none.
    fn hash_files(&self, patterns: &[String]) -> Result<String, String>;
}

/// Everything an expression can read.
#[derive(Default)]
pub struct Context<'a> {
    /// Named contexts by lowercase name: `github`, `env`, `matrix`, `steps`...
    pub contexts: BTreeMap<String, Value>,
    pub status: Status,
    pub hasher: Option<&'a (dyn FileHasher + Sync)>,
}

impl Context<'_> {
    /// Adds or replaces a named context.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.contexts.insert(name.to_ascii_lowercase(), value);
        self
    }
}

/// Evaluates one expression (without the `${{ }}`).
pub fn evaluate(text: &str, ctx: &Context) -> Result<Value, ExprError> {
    eval::eval(&parse(text)?, ctx)
}

/// Parses an `if:` condition: `${{ }}` is optional, and without a status
/// function the condition means `success() && (condition)`.
pub fn parse_condition(text: &str) -> Result<Ast, ExprError> {
    let trimmed = text.trim();
    let inner = match trimmed
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("${{") => inner,
        _ => trimmed,
    };
    let ast = parse(inner)?;
    if ast.calls_status() {
        return Ok(ast);
    }
    Ok(Ast::Binary(
        parse::Op::And,
        Box::new(Ast::Call(parse::Function::Success, Vec::new())),
        Box::new(ast),
    ))
}

/// Evaluates an `if:` condition to run-or-skip.
pub fn evaluate_condition(text: &str, ctx: &Context) -> Result<bool, ExprError> {
    Ok(eval::eval(&parse_condition(text)?, ctx)?.is_truthy())
}

/// A string split into literal text and `${{ }}` expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text(String),
    Expr(Ast),
}

/// Splits `template` at its `${{ }}` markers and parses each expression.
/// Offsets in errors count from the start of the template.
pub fn parse_template(template: &str) -> Result<Vec<Segment>, ExprError> {
    let mut segments = Vec::new();
    let mut rest = template;
    let mut base = 0;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            segments.push(Segment::Text(rest[..start].to_owned()));
        }
        let body = &rest[start + 3..];
        let body_offset = base + rest[..start + 3].chars().count();
        let end = closing(body).ok_or_else(|| {
            ExprError::at(
                base + rest[..start].chars().count(),
                "`${{` is never closed with `}}`",
            )
        })?;
        let ast =
            parse(&body[..end]).map_err(|e| ExprError::at(body_offset + e.offset, e.message))?;
        segments.push(Segment::Expr(ast));
        let consumed = start + 3 + end + 2;
        base += rest[..consumed].chars().count();
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_owned()));
    }
    Ok(segments)
}

/// Byte index of the `}}` that ends an expression, skipping string literals.
fn closing(body: &str) -> Option<usize> {
    let mut in_string = false;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Renders a template. A template that is exactly one `${{ }}` keeps the
/// value's type (so `${{ matrix.os }}` can be a list); otherwise each value is
/// coerced to a string.
pub fn render(template: &str, ctx: &Context) -> Result<Value, ExprError> {
    let segments = parse_template(template)?;
    if let [Segment::Expr(ast)] = segments.as_slice() {
        return eval::eval(ast, ctx);
    }
    let mut out = String::new();
    for segment in &segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Expr(ast) => out.push_str(&eval::eval(ast, ctx)?.to_string()),
        }
    }
    Ok(Value::String(out))
}

/// Renders a template to a string.
pub fn render_string(template: &str, ctx: &Context) -> Result<String, ExprError> {
    render(template, ctx).map(|v| v.to_string())
}

#[cfg(test)]
mod tests;
