//! Evaluation with GitHub's loose equality, coercion and `.*` filters.

use super::parse::{Ast, Function, Op};
use super::{Context, ExprError, Status, Value};
use std::cmp::Ordering;

/// A value, and whether it came from a `.*` filter: property and index access
/// on a filtered array apply to each element instead of the array.
struct Item {
    value: Value,
    filtered: bool,
}

fn plain(value: Value) -> Item {
    Item {
        value,
        filtered: false,
    }
}

pub fn eval(ast: &Ast, ctx: &Context) -> Result<Value, ExprError> {
    item(ast, ctx).map(|i| i.value)
}

fn item(ast: &Ast, ctx: &Context) -> Result<Item, ExprError> {
    Ok(match ast {
        Ast::Literal(v) => plain(v.clone()),
        Ast::Context(name) => plain(ctx.contexts.get(name).cloned().unwrap_or_default()),
        Ast::Property(base, name) => {
            let base = item(base, ctx)?;
            access(base, |v| v.get(name).cloned())
        }
        Ast::Index(base, index) => {
            let base = item(base, ctx)?;
            let index = eval(index, ctx)?;
            access(base, |v| lookup(v, &index))
        }
        Ast::Star(base) => {
            let base = item(base, ctx)?;
            let elements = |v: Value| match v {
                Value::Array(items) => items,
                Value::Object(map) => map.into_values().collect(),
                _ => Vec::new(),
            };
            let value = if base.filtered {
                let Value::Array(items) = base.value else {
                    unreachable!("filtered items are arrays");
                };
                items.into_iter().flat_map(elements).collect()
            } else {
                elements(base.value)
            };
            Item {
                value: Value::Array(value),
                filtered: true,
            }
        }
        Ast::Not(inner) => plain(Value::Bool(!eval(inner, ctx)?.is_truthy())),
        Ast::Binary(Op::And, a, b) => {
            let left = eval(a, ctx)?;
            plain(if left.is_truthy() {
                eval(b, ctx)?
            } else {
                left
            })
        }
        Ast::Binary(Op::Or, a, b) => {
            let left = eval(a, ctx)?;
            plain(if left.is_truthy() {
                left
            } else {
                eval(b, ctx)?
            })
        }
        Ast::Binary(op, a, b) => {
            let (a, b) = (eval(a, ctx)?, eval(b, ctx)?);
            let result = match op {
                Op::Eq => loose_eq(&a, &b),
                Op::Ne => !loose_eq(&a, &b),
                Op::Lt => compare(&a, &b) == Some(Ordering::Less),
                Op::Le => matches!(compare(&a, &b), Some(Ordering::Less | Ordering::Equal)),
                Op::Gt => compare(&a, &b) == Some(Ordering::Greater),
                Op::Ge => matches!(compare(&a, &b), Some(Ordering::Greater | Ordering::Equal)),
                Op::And | Op::Or => unreachable!("handled above for short-circuiting"),
            };
            plain(Value::Bool(result))
        }
        Ast::Call(function, args) => plain(call(*function, args, ctx)?),
    })
}

/// Applies an access to a value, or to each element of a filtered array.
fn access(base: Item, get: impl Fn(&Value) -> Option<Value>) -> Item {
    if base.filtered {
        let Value::Array(items) = &base.value else {
            unreachable!("filtered items are arrays");
        };
        Item {
            value: Value::Array(items.iter().filter_map(&get).collect()),
            filtered: true,
        }
    } else {
        plain(get(&base.value).unwrap_or_default())
    }
}

fn lookup(value: &Value, index: &Value) -> Option<Value> {
    match (value, index) {
        (Value::Array(items), Value::Number(n)) if *n >= 0.0 => items.get(*n as usize).cloned(),
        (Value::Object(_), key) => value.get(&key.to_string()).cloned(),
        _ => None,
    }
}

/// `==` as on GitHub: same types compare directly (strings ignoring case),
/// different types compare as numbers, arrays and objects never equal.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => a.to_number() == b.to_number(),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => None,
        _ => a.to_number().partial_cmp(&b.to_number()),
    }
}

fn call(function: Function, args: &[Ast], ctx: &Context) -> Result<Value, ExprError> {
    let status = |s: Status| Ok(Value::Bool(ctx.status == s));
    match function {
        Function::Success => return status(Status::Success),
        Function::Failure => return status(Status::Failure),
        Function::Cancelled => return status(Status::Cancelled),
        Function::Always => return Ok(Value::Bool(true)),
        _ => {}
    }
    let values = args
        .iter()
        .map(|a| eval(a, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let text = |i: usize| values[i].to_string().to_lowercase();
    Ok(match function {
        Function::Contains => Value::Bool(match &values[0] {
            Value::Array(items) => items.iter().any(|v| loose_eq(v, &values[1])),
            _ => text(0).contains(&text(1)),
        }),
        Function::StartsWith => Value::Bool(text(0).starts_with(&text(1))),
        Function::EndsWith => Value::Bool(text(0).ends_with(&text(1))),
        Function::Format => Value::String(format(&values[0].to_string(), &values[1..])?),
        Function::Join => {
            let separator = values.get(1).map_or(",".to_owned(), Value::to_string);
            Value::String(match &values[0] {
                Value::Array(items) => items
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(&separator),
                other => other.to_string(),
            })
        }
        Function::ToJson => Value::String(
            serde_json::to_string_pretty(&values[0].to_json())
                .expect("JSON values always serialize"),
        ),
        Function::FromJson => {
            let text = values[0].to_string();
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ExprError::at(0, format!("fromJSON: invalid JSON: {e}")))?;
            Value::from(&json)
        }
        Function::HashFiles => {
            let Some(hasher) = ctx.hasher else {
                return Err(ExprError::at(
                    0,
                    "hashFiles() is only available while a job runs",
                ));
            };
            let patterns: Vec<String> = values.iter().map(Value::to_string).collect();
            Value::String(
                hasher
                    .hash_files(&patterns)
                    .map_err(|e| ExprError::at(0, format!("hashFiles: {e}")))?,
            )
        }
        Function::Success | Function::Failure | Function::Cancelled | Function::Always => {
            unreachable!("status functions return above")
        }
    })
}

/// `format('{0} {1}', a, b)` with `{{` and `}}` as literal braces.
fn format(template: &str, args: &[Value]) -> Result<String, ExprError> {
    let bad = |what: &str| ExprError::at(0, format!("format: {what} in '{template}'"));
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut digits = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    digits.push(d);
                }
                let index: usize = digits
                    .parse()
                    .ok()
                    .filter(|_| closed)
                    .ok_or_else(|| bad("`{` must start `{N}` or `{{`"))?;
                let arg = args
                    .get(index)
                    .ok_or_else(|| bad(&format!("no argument {index}")))?;
                out.push_str(&arg.to_string());
            }
            '}' => return Err(bad("a lone `}` (write `}}`)")),
            c => out.push(c),
        }
    }
    Ok(out)
}
