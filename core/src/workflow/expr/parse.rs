//! Lexer and recursive-descent parser for the `${{ }}` expression language.
//!
//! Precedence, highest first: `( )`, `[ ] . .*`, `!`, `< <= > >=`, `== !=`,
//! `&&`, `||`. Length and nesting are capped at GitHub's own limits.

use super::{ExprError, Value, to_number};

/// Longest expression accepted, in characters (GitHub's limit).
pub const MAX_LEN: usize = 21_000;
/// Deepest nesting accepted (GitHub's limit).
pub const MAX_DEPTH: usize = 50;

/// Context names an expression may start from.
pub const CONTEXTS: &[&str] = &[
    "github", "env", "vars", "secrets", "matrix", "strategy", "steps", "needs", "inputs", "runner",
    "job", "jobs",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    HashFiles,
    Success,
    Failure,
    Always,
    Cancelled,
}

impl Function {
    /// Name as documented, minimum and maximum argument count.
    const ALL: &[(Function, &'static str, usize, usize)] = &[
        (Function::Contains, "contains", 2, 2),
        (Function::StartsWith, "startsWith", 2, 2),
        (Function::EndsWith, "endsWith", 2, 2),
        (Function::Format, "format", 1, usize::MAX),
        (Function::Join, "join", 1, 2),
        (Function::ToJson, "toJSON", 1, 1),
        (Function::FromJson, "fromJSON", 1, 1),
        (Function::HashFiles, "hashFiles", 1, usize::MAX),
        (Function::Success, "success", 0, 0),
        (Function::Failure, "failure", 0, 0),
        (Function::Always, "always", 0, 0),
        (Function::Cancelled, "cancelled", 0, 0),
    ];

    pub fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Always | Function::Cancelled
        )
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Literal(Value),
    Context(String),
    Property(Box<Ast>, String),
    Index(Box<Ast>, Box<Ast>),
    Star(Box<Ast>),
    Not(Box<Ast>),
    Binary(Op, Box<Ast>, Box<Ast>),
    Call(Function, Vec<Ast>),
}

impl Ast {
    /// Whether a status function (`success()`, `always()`...) appears anywhere.
    pub fn calls_status(&self) -> bool {
        match self {
            Ast::Literal(_) | Ast::Context(_) => false,
            Ast::Property(a, _) | Ast::Star(a) | Ast::Not(a) => a.calls_status(),
            Ast::Index(a, b) | Ast::Binary(_, a, b) => a.calls_status() || b.calls_status(),
            Ast::Call(f, args) => f.is_status() || args.iter().any(Ast::calls_status),
        }
    }

    /// Context names the expression reads (`matrix`, `needs`...), lowercased.
    pub fn contexts(&self, out: &mut Vec<String>) {
        match self {
            Ast::Literal(_) => {}
            Ast::Context(name) => out.push(name.clone()),
            Ast::Property(a, _) | Ast::Star(a) | Ast::Not(a) => a.contexts(out),
            Ast::Index(a, b) | Ast::Binary(_, a, b) => {
                a.contexts(out);
                b.contexts(out);
            }
            Ast::Call(_, args) => args.iter().for_each(|a| a.contexts(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Str(String),
    Ident(String),
    Punct(&'static str),
}

const PUNCT: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ".", ",", "*",
];

fn lex(text: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ExprError::at(start, "unterminated string: close it with '"));
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push((start, Token::Str(s)));
        } else if c.is_ascii_digit()
            || (c == '-'
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.'))
            || (c == '.'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !after_value(&tokens))
        {
            i += 1;
            while let Some(&n) = chars.get(i) {
                let exponent_sign = (n == '+' || n == '-') && matches!(chars[i - 1], 'e' | 'E');
                if n.is_ascii_alphanumeric() || n == '.' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let n = to_number(&literal);
            if n.is_nan() {
                return Err(ExprError::at(start, format!("`{literal}` is not a number")));
            }
            tokens.push((start, Token::Number(n)));
        } else if c.is_alphabetic() || c == '_' {
            while chars
                .get(i)
                .is_some_and(|n| n.is_alphanumeric() || *n == '_' || *n == '-')
            {
                i += 1;
            }
            tokens.push((start, Token::Ident(chars[start..i].iter().collect())));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) else {
                return Err(ExprError::at(start, format!("unexpected character `{c}`")));
            };
            i += p.len();
            tokens.push((start, Token::Punct(p)));
        }
    }
    Ok(tokens)
}

/// After a value a `.` is a property access, never the start of a number.
fn after_value(tokens: &[(usize, Token)]) -> bool {
    matches!(
        tokens.last(),
        Some((_, Token::Ident(_) | Token::Punct(")" | "]" | "*")))
    )
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    depth: usize,
    end: usize,
}

/// Parses one expression (the text between `${{` and `}}`).
pub fn parse(text: &str) -> Result<Ast, ExprError> {
    if text.chars().count() > MAX_LEN {
        return Err(ExprError::at(
            0,
            format!("expression is longer than {MAX_LEN} characters"),
        ));
    }
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(ExprError::at(0, "empty expression"));
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
        end: text.chars().count(),
    };
    let ast = parser.or()?;
    if let Some((at, token)) = parser.tokens.get(parser.next) {
        return Err(ExprError::at(
            *at,
            format!(
                "unexpected {}; expected an operator or the end",
                describe(token)
            ),
        ));
    }
    Ok(ast)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Number(n) => format!("number {}", Value::Number(*n)),
        Token::Str(s) => format!("string '{s}'"),
        Token::Ident(s) => format!("`{s}`"),
        Token::Punct(p) => format!("`{p}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(at, _)| *at)
    }

    fn eat(&mut self, punct: &str) -> bool {
        if self.peek()
            == Some(&Token::Punct(match PUNCT.iter().find(|p| **p == punct) {
                Some(p) => p,
                None => return false,
            }))
        {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), ExprError> {
        if self.eat(punct) {
            Ok(())
        } else {
            let found = self.peek().map_or("the end".to_owned(), describe);
            Err(ExprError::at(
                self.offset(),
                format!("expected `{punct}`, found {found}"),
            ))
        }
    }

    fn nest(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::at(
                self.offset(),
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn binary(
        &mut self,
        ops: &[(&str, Op)],
        operand: fn(&mut Self) -> Result<Ast, ExprError>,
    ) -> Result<Ast, ExprError> {
        let saved = self.depth;
        let mut left = operand(self)?;
        'outer: loop {
            for (text, op) in ops {
                if self.eat(text) {
                    self.nest()?;
                    let right = operand(self)?;
                    left = Ast::Binary(*op, Box::new(left), Box::new(right));
                    continue 'outer;
                }
            }
            self.depth = saved;
            return Ok(left);
        }
    }

    fn or(&mut self) -> Result<Ast, ExprError> {
        self.binary(&[("||", Op::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Ast, ExprError> {
        self.binary(&[("&&", Op::And)], Self::equality)
    }

    fn equality(&mut self) -> Result<Ast, ExprError> {
        self.binary(&[("==", Op::Eq), ("!=", Op::Ne)], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Ast, ExprError> {
        self.binary(
            &[("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)],
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        if self.eat("!") {
            self.nest()?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(operand)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Ast, ExprError> {
        let saved = self.depth;
        let mut ast = self.primary()?;
        loop {
            if self.eat(".") {
                self.nest()?;
                if self.eat("*") {
                    ast = Ast::Star(Box::new(ast));
                } else if let Some(Token::Ident(name)) = self.peek() {
                    ast = Ast::Property(Box::new(ast), name.clone());
                    self.next += 1;
                } else {
                    return Err(ExprError::at(
                        self.offset(),
                        "expected a property name or `*` after `.`",
                    ));
                }
            } else if self.eat("[") {
                self.nest()?;
                let index = self.or()?;
                self.expect("]")?;
                ast = Ast::Index(Box::new(ast), Box::new(index));
            } else {
                self.depth = saved;
                return Ok(ast);
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, ExprError> {
        let at = self.offset();
        let Some(token) = self.peek().cloned() else {
            return Err(ExprError::at(at, "expression ends early; expected a value"));
        };
        self.next += 1;
        match token {
            Token::Number(n) => Ok(Ast::Literal(Value::Number(n))),
            Token::Str(s) => Ok(Ast::Literal(Value::String(s))),
            Token::Punct("(") => {
                self.nest()?;
                let inner = self.or()?;
                self.expect(")")?;
                self.depth -= 1;
                Ok(inner)
            }
            Token::Ident(name) if self.eat("(") => self.call(at, &name),
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Ast::Literal(Value::Bool(true))),
                "false" => Ok(Ast::Literal(Value::Bool(false))),
                "null" => Ok(Ast::Literal(Value::Null)),
                _ => {
                    let lower = name.to_ascii_lowercase();
                    if CONTEXTS.contains(&lower.as_str()) {
                        Ok(Ast::Context(lower))
                    } else {
                        Err(ExprError::at(
                            at,
                            format!(
                                "unknown context `{name}`; expected one of {}",
                                CONTEXTS.join(", ")
                            ),
                        ))
                    }
                }
            },
            other => Err(ExprError::at(
                at,
                format!("unexpected {}; expected a value", describe(&other)),
            )),
        }
    }

    fn call(&mut self, at: usize, name: &str) -> Result<Ast, ExprError> {
        let Some(&(function, canonical, min, max)) = Function::ALL
            .iter()
            .find(|(_, n, _, _)| n.eq_ignore_ascii_case(name))
        else {
            let names: Vec<&str> = Function::ALL.iter().map(|(_, n, _, _)| *n).collect();
            return Err(ExprError::at(
                at,
                format!(
                    "unknown function `{name}`; expected one of {}",
                    names.join(", ")
                ),
            ));
        };
        self.nest()?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.or()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.depth -= 1;
        if args.len() < min || args.len() > max {
            let wanted = match (min, max) {
                (a, b) if a == b => a.to_string(),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(ExprError::at(
                at,
                format!("{canonical}() takes {wanted} arguments, got {}", args.len()),
            ));
        }
        Ok(Ast::Call(function, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence() {
        let ast = parse("a == b").expect_err("unknown context");
        assert!(ast.message.contains("unknown context `a`"));
        let ast = parse("!github.x == 'a' && env.B || false").expect("valid");
        let Ast::Binary(Op::Or, left, _) = ast else {
            panic!("|| binds loosest");
        };
        assert!(matches!(*left, Ast::Binary(Op::And, _, _)));
    }

    #[test]
    fn reports_positions() {
        let e = parse("github.ref == 'main").expect_err("unterminated");
        assert_eq!(e.offset, 14);
        let e = parse("contains(github.ref)").expect_err("arity");
        assert!(e.message.contains("takes 2 arguments"), "{e}");
        let e = parse("github.").expect_err("dangling dot");
        assert_eq!(e.offset, 7);
        assert!(
            parse(&"(".repeat(60))
                .expect_err("deep")
                .message
                .contains("deeper")
        );
    }

    #[test]
    fn lexes_numbers_and_properties() {
        assert_eq!(
            parse("-1.5e2").expect("n"),
            Ast::Literal(Value::Number(-150.0))
        );
        assert_eq!(
            parse("0xff").expect("hex"),
            Ast::Literal(Value::Number(255.0))
        );
        assert_eq!(
            parse("steps.my-step.outputs").expect("dash"),
            Ast::Property(
                Box::new(Ast::Property(
                    Box::new(Ast::Context("steps".into())),
                    "my-step".into()
                )),
                "outputs".into()
            )
        );
        assert!(parse("1abc").is_err());
    }
}
