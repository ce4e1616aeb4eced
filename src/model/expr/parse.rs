//! The expression language's parser: a tokenizer and a precedence-climbing parser over
//!
//! ```text
//! sum     = product (("+" | "-") product)*
//! product = unary (("*" | "/") unary)*
//! unary   = ("-" | "+") unary | power
//! power   = atom ("^" unary)?            right-associative, tighter than unary minus
//! atom    = number | name | name "(" sum ("," sum)* ")" | "(" sum ")"
//! ```
//!
//! so `-x^2` is -(x^2) and `2^-x` is 2^(-x). Columns in errors count characters from 1.

use super::tree::{self, Expr, Func, Func2, Var};
use std::fmt;

/// A parse or name error at a column (characters, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub column: usize,
    pub message: String,
    /// Said after the column ("; did you mean 'k'? ...").
    pub hint: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}{}", self.message, self.column, self.hint)
    }
}

fn at(column: usize, message: String) -> ExprError {
    ExprError {
        column,
        message,
        hint: String::new(),
    }
}

/// What names an expression may use.
#[derive(Debug, Clone)]
pub struct Names<'a> {
    /// Coordinates x0 .. x{dim-1} (and x, y, z for the first three).
    pub dim: usize,
    /// Whether `t` is allowed.
    pub time: bool,
    /// Whether coordinates are allowed (false for schedules of t alone).
    pub space: bool,
    /// Whether `r` (pair distance) is allowed, read as sqrt(s).
    pub pair: bool,
    /// The parameters, in table order.
    pub params: &'a [String],
}

/// The largest dimension an expression can address (x0..x7).
pub const MAX_AXES: usize = 8;

/// Names that are never parameters.
pub const RESERVED: &[&str] = &["x", "y", "z", "t", "r", "pi"];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Name(String),
    Op(char),
    End,
}

struct Lexer {
    tokens: Vec<(Token, usize)>,
}

fn lex(src: &str) -> Result<Lexer, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let value: f64 = text
                .parse()
                .map_err(|_| at(column, format!("malformed number '{text}'")))?;
            tokens.push((Token::Num(value), column));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Name(chars[start..i].iter().collect()), column));
        } else if "+-*/^(),".contains(c) {
            tokens.push((Token::Op(c), column));
            i += 1;
        } else {
            return Err(at(
                column,
                format!("unexpected character '{c}' (allowed: numbers, names, + - * / ^ ( ) ,)"),
            ));
        }
    }
    tokens.push((Token::End, chars.len() + 1));
    Ok(Lexer { tokens })
}

/// The axis a coordinate name denotes: x, y, z (0, 1, 2) or x0 .. x7.
pub fn axis_of(name: &str) -> Option<usize> {
    match name {
        "x" => Some(0),
        "y" => Some(1),
        "z" => Some(2),
        _ => {
            let digits = name.strip_prefix('x')?;
            let k: usize = digits.parse().ok()?;
            (digits.len() == 1 && k < MAX_AXES).then_some(k)
        }
    }
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    at: usize,
    names: &'a Names<'a>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at].0
    }

    fn column(&self) -> usize {
        self.tokens[self.at].1
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(at(self.column(), message.into()))
    }

    fn expect(&mut self, op: char) -> Result<(), ExprError> {
        if *self.peek() == Token::Op(op) {
            self.at += 1;
            Ok(())
        } else {
            let found = self.describe();
            self.error(format!("expected '{op}', found {found}"))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Token::Num(v) => format!("number {v}"),
            Token::Name(n) => format!("'{n}'"),
            Token::Op(c) => format!("'{c}'"),
            Token::End => "the end".into(),
        }
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.product()?;
        loop {
            match self.peek() {
                Token::Op('+') => {
                    self.at += 1;
                    e = tree::add(e, self.product()?);
                }
                Token::Op('-') => {
                    self.at += 1;
                    e = tree::sub(e, self.product()?);
                }
                _ => return Ok(e),
            }
        }
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        loop {
            match self.peek() {
                Token::Op('*') => {
                    self.at += 1;
                    e = tree::mul(e, self.unary()?);
                }
                Token::Op('/') => {
                    self.at += 1;
                    e = tree::div(e, self.unary()?);
                }
                _ => return Ok(e),
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Token::Op('-') => {
                self.at += 1;
                Ok(tree::neg(self.unary()?))
            }
            Token::Op('+') => {
                self.at += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.atom()?;
        if *self.peek() == Token::Op('^') {
            self.at += 1;
            let exponent = self.unary()?;
            return Ok(tree::pow(base, exponent));
        }
        Ok(base)
    }

    fn args(&mut self, name: &str, count: usize) -> Result<Vec<Expr>, ExprError> {
        if *self.peek() != Token::Op('(') {
            return self.error(format!("'{name}' is a function: expected '(' after it"));
        }
        self.at += 1;
        let mut args = vec![self.sum()?];
        while *self.peek() == Token::Op(',') {
            self.at += 1;
            args.push(self.sum()?);
        }
        if args.len() != count {
            return self.error(format!(
                "'{name}' takes {count} argument{}, found {}",
                if count == 1 { "" } else { "s" },
                args.len()
            ));
        }
        self.expect(')')?;
        Ok(args)
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let column = self.column();
        match self.peek().clone() {
            Token::Num(v) => {
                self.at += 1;
                Ok(tree::num(v))
            }
            Token::Op('(') => {
                self.at += 1;
                let e = self.sum()?;
                self.expect(')')?;
                Ok(e)
            }
            Token::Name(name) => {
                self.at += 1;
                if let Some((_, f)) = Func::NAMED.iter().find(|(n, _)| *n == name) {
                    let a = self.args(&name, 1)?;
                    return Ok(tree::call(*f, a[0].clone()));
                }
                if let Some((_, f)) = Func2::NAMED.iter().find(|(n, _)| *n == name) {
                    let a = self.args(&name, 2)?;
                    return Ok(tree::call2(*f, a[0].clone(), a[1].clone()));
                }
                if name == "pow" {
                    let a = self.args(&name, 2)?;
                    return Ok(tree::pow(a[0].clone(), a[1].clone()));
                }
                let e = self.name(&name, column)?;
                if *self.peek() == Token::Op('(') {
                    return self.error(format!(
                        "'{name}' is not a function (functions: {})",
                        function_names().join(" ")
                    ));
                }
                Ok(e)
            }
            _ => {
                let found = self.describe();
                self.error(format!("expected a number, a name or '(', found {found}"))
            }
        }
    }

    fn name(&self, name: &str, column: usize) -> Result<Expr, ExprError> {
        let names = self.names;
        let err = |message: String| Err(at(column, message));
        if let Some(k) = names.params.iter().position(|p| p == name) {
            return Ok(tree::param(k as u16));
        }
        if let Some(axis) = axis_of(name) {
            if !names.space {
                return err(format!(
                    "'{name}' is a coordinate; this expression may only use t and its params"
                ));
            }
            if axis >= names.dim {
                return err(format!(
                    "'{name}' is axis {axis} but dim = {} ({})",
                    names.dim,
                    coordinate_list(names.dim)
                ));
            }
            return Ok(tree::var(Var::Axis(axis as u8)));
        }
        match name {
            "t" if names.time => Ok(tree::var(Var::T)),
            "t" => err("'t' is not available here".into()),
            "r" if names.pair => Ok(tree::call(Func::Sqrt, tree::var(Var::S))),
            "r" => err("'r' (pair distance) is only available in interaction potentials".into()),
            "pi" => Ok(tree::num(std::f64::consts::PI)),
            _ => {
                let valid = valid_names(names);
                let refs: Vec<&str> = valid.iter().map(String::as_str).collect();
                let guess = match crate::scenario::walk::suggest(name, &refs) {
                    Some(s) => format!("; did you mean '{s}'?"),
                    None => String::new(),
                };
                Err(ExprError {
                    column,
                    message: format!("unknown name '{name}'"),
                    hint: format!(
                        "{guess} (names here: {}; any other name must be a param)",
                        refs.join(" ")
                    ),
                })
            }
        }
    }
}

fn function_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = Func::NAMED.iter().map(|(n, _)| *n).collect();
    v.extend(Func2::NAMED.iter().map(|(n, _)| *n));
    v.push("pow");
    v
}

/// "x, y" or "x0 .. x4" style list of the coordinates of `dim`.
pub fn coordinate_list(dim: usize) -> String {
    let short = ["x", "y", "z"];
    let mut parts: Vec<String> = short.iter().take(dim).map(|s| s.to_string()).collect();
    parts.extend((0..dim).map(|k| format!("x{k}")));
    if parts.is_empty() {
        "no coordinates".into()
    } else {
        format!("coordinates {}", parts.join(" "))
    }
}

fn valid_names(names: &Names<'_>) -> Vec<String> {
    let mut v: Vec<String> = names.params.to_vec();
    if names.space {
        v.extend(
            ["x", "y", "z"]
                .iter()
                .take(names.dim)
                .map(|s| s.to_string()),
        );
        v.extend((0..names.dim).map(|k| format!("x{k}")));
    }
    if names.time {
        v.push("t".into());
    }
    if names.pair {
        v.push("r".into());
    }
    v.push("pi".into());
    v
}

/// Parses `src` into a simplified tree.
pub fn parse(src: &str, names: &Names<'_>) -> Result<Expr, ExprError> {
    let lexer = lex(src)?;
    let mut p = Parser {
        tokens: lexer.tokens,
        at: 0,
        names,
    };
    if *p.peek() == Token::End {
        return p.error("empty expression");
    }
    let e = p.sum()?;
    if *p.peek() != Token::End {
        let found = p.describe();
        return p.error(format!("expected an operator or the end, found {found}"));
    }
    Ok(e)
}

/// Whether `name` may be a parameter: an identifier that is neither a coordinate, t, r, pi
/// nor a function.
pub fn check_param_name(name: &str) -> Result<(), String> {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err("a name of letters, digits and _ that starts with a letter or _".into());
    }
    if RESERVED.contains(&name) || axis_of(name).is_some() || function_names().contains(&name) {
        return Err(format!(
            "a name that is not a coordinate, t, r, pi or a function ('{name}' is reserved)"
        ));
    }
    Ok(())
}
