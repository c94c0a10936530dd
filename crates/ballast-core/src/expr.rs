//! Metric arithmetic as a safe expression language (seed 003's `events[].metric`, which the
//! original ran through Python's `eval`). Numbers, aliases, `+ - * / ** ( )`, unary minus,
//! and `min`, `max`, `abs` over arguments or a list (`max([a, b])`). Aliases are whole
//! tokens, never text substitution. Nothing is ever executed; an error names the column.
//!
//! Precedence as in Python: `**` binds tighter than unary minus on its left (`-2**2` is -4)
//! and is right-associative; `*` `/` above `+` `-`. Evaluation with a missing alias, a
//! division by zero or a non-finite result is unknown (`None`): the rule using it does
//! nothing.

use std::collections::BTreeMap;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A metric alias.
    Alias(String),
    /// `-e`.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
    /// `min`/`max`/`abs` over arguments (a list argument is flattened).
    Call(Func, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `**`
    Pow,
}

/// Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `min`
    Min,
    /// `max`
    Max,
    /// `abs`
    Abs,
}

/// A syntax error at a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ExprError {
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Sym(&'static str),
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |c: usize, m: String| ExprError { column: c + 1, message: m };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
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
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s.parse().map_err(|_| err(start, format!("`{s}` is not a number")))?;
            out.push((Tok::Num(v), start));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = if two == "**" {
                "**"
            } else {
                match c {
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    ',' => ",",
                    _ => {
                        return Err(err(
                            i,
                            format!("`{c}` is not allowed; use numbers, aliases, + - * / ** ( ), min, max, abs"),
                        ));
                    }
                }
            };
            out.push((Tok::Sym(sym), i));
            i += sym.len();
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

/// Nesting deeper than this is refused (no input can exhaust the stack).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.1) + 1
    }
    fn err<T>(&self, m: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError { column: self.col(), message: m.into() })
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.peek()
            == Some(&Tok::Sym(match s {
                "**" => "**",
                "+" => "+",
                "-" => "-",
                "*" => "*",
                "/" => "/",
                "(" => "(",
                ")" => ")",
                "[" => "[",
                "]" => "]",
                _ => ",",
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, s: &str) -> Result<(), ExprError> {
        if self.eat(s) { Ok(()) } else { self.err(format!("expected `{s}`")) }
    }
    fn additive(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("the expression nests too deeply");
        }
        let mut e = self.multiplicative()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                break;
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.multiplicative()?));
        }
        self.depth -= 1;
        Ok(e)
    }
    fn multiplicative(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else {
                break;
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("the expression nests too deeply");
        }
        let e = if self.eat("-") {
            Expr::Neg(Box::new(self.unary()?))
        } else if self.eat("+") {
            self.unary()?
        } else {
            let base = self.primary()?;
            if self.eat("**") { Expr::Bin(Op::Pow, Box::new(base), Box::new(self.unary()?)) } else { base }
        };
        self.depth -= 1;
        Ok(e)
    }
    fn primary(&mut self) -> Result<Expr, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(Expr::Num(v))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                let func = match name.as_str() {
                    "min" => Some(Func::Min),
                    "max" => Some(Func::Max),
                    "abs" => Some(Func::Abs),
                    _ => None,
                };
                match func {
                    Some(f) => {
                        self.expect("(")?;
                        let args = self.args(")")?;
                        let n = args
                            .iter()
                            .map(|a| if let Expr::Call(_, v) = a { v.len().max(1) } else { 1 })
                            .sum::<usize>();
                        if args.is_empty() || (f == Func::Abs && n != 1) {
                            return self.err(format!(
                                "{name}() needs {}",
                                if f == Func::Abs { "one argument" } else { "arguments or a list" }
                            ));
                        }
                        Ok(Expr::Call(f, args))
                    }
                    None if self.peek() == Some(&Tok::Sym("(")) => {
                        self.err(format!("`{name}` is not a function; only min, max and abs are"))
                    }
                    None => Ok(Expr::Alias(name)),
                }
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.additive()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Sym("[")) => {
                self.pos += 1;
                // A list stands only as a function's argument; it is flattened there.
                let items = self.args("]")?;
                Ok(list(items))
            }
            Some(Tok::Sym(s)) => self.err(format!("unexpected `{s}`")),
            None => self.err("the expression ends too early"),
        }
    }
    fn args(&mut self, close: &str) -> Result<Vec<Expr>, ExprError> {
        let mut out = Vec::new();
        if self.eat(close) {
            return Ok(out);
        }
        loop {
            out.push(self.additive()?);
            if self.eat(close) {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }
}

/// A list literal: kept as a marker call that functions flatten.
fn list(items: Vec<Expr>) -> Expr {
    Expr::Call(Func::Abs, vec![Expr::Call(Func::Min, items), Expr::Num(f64::NAN)])
}

fn as_list(e: &Expr) -> Option<&[Expr]> {
    match e {
        Expr::Call(Func::Abs, v) if v.len() == 2 && matches!(&v[1], Expr::Num(n) if n.is_nan()) => match &v[0] {
            Expr::Call(Func::Min, items) => Some(items),
            _ => None,
        },
        _ => None,
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let toks = lex(text)?;
        let mut p = Parser { end: text.chars().count(), toks, pos: 0, depth: 0 };
        let e = p.additive()?;
        if p.pos < p.toks.len() {
            return p.err("unexpected text after the expression");
        }
        if as_list(&e).is_some() {
            return Err(ExprError { column: 1, message: "a list stands only inside min(), max() or abs()".into() });
        }
        Ok(e)
    }

    /// The aliases it reads, in order of appearance.
    pub fn aliases(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Alias(a) = e
                && !out.contains(a)
            {
                out.push(a.clone());
            }
        });
        out
    }

    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(e) => e.walk(f),
            Expr::Bin(_, a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(_, v) => v.iter().for_each(|e| e.walk(f)),
            Expr::Num(_) | Expr::Alias(_) => {}
        }
    }

    /// Evaluates with the aliases' values; `None` when unknown.
    pub fn eval(&self, values: &BTreeMap<String, f64>) -> Option<f64> {
        let v = match self {
            Expr::Num(n) => *n,
            Expr::Alias(a) => *values.get(a)?,
            Expr::Neg(e) => -e.eval(values)?,
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(values)?, b.eval(values)?);
                match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    Op::Mul => x * y,
                    Op::Div if y == 0.0 => return None,
                    Op::Div => x / y,
                    Op::Pow => x.powf(y),
                }
            }
            Expr::Call(f, args) => {
                let mut xs = Vec::new();
                for a in args {
                    match as_list(a) {
                        Some(items) => {
                            for i in items {
                                xs.push(i.eval(values)?);
                            }
                        }
                        None => xs.push(a.eval(values)?),
                    }
                }
                match f {
                    Func::Min => xs.into_iter().reduce(f64::min)?,
                    Func::Max => xs.into_iter().reduce(f64::max)?,
                    Func::Abs if xs.len() == 1 => xs[0].abs(),
                    Func::Abs => return None,
                }
            }
        };
        v.is_finite().then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str, vals: &[(&str, f64)]) -> Option<f64> {
        let m: BTreeMap<String, f64> = vals.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Expr::parse(text).unwrap().eval(&m)
    }

    #[test]
    fn evaluates_like_python() {
        assert!(
            (ev("cpu_usage * mem_usage * 100", &[("cpu_usage", 0.5), ("mem_usage", 0.2)]).unwrap() - 10.0).abs() < 1e-9
        );
        assert_eq!(ev("-2**2", &[]), Some(-4.0));
        assert_eq!(ev("2**3**2", &[]), Some(512.0));
        assert_eq!(ev("2**-1", &[]), Some(0.5));
        assert_eq!(ev("max([a, b])", &[("a", 1.0), ("b", 3.0)]), Some(3.0));
        assert_eq!(ev("min(a, b, 7)", &[("a", 1.0), ("b", 3.0)]), Some(1.0));
        assert_eq!(ev("abs(-a)", &[("a", 2.5)]), Some(2.5));
        assert_eq!(ev("(1 + 2) * 3 - 4 / 2", &[]), Some(7.0));
        assert_eq!(ev("1e3 + .5", &[]), Some(1000.5));
        let seed = "cpu_usage ** 2 - (mem_usage - 2000 + 1) * mem_usage + mem_usage * 0";
        assert_eq!(ev(seed, &[("cpu_usage", 3.0), ("mem_usage", 2.0)]), Some(9.0 - (2.0 - 2000.0 + 1.0) * 2.0));
    }

    #[test]
    fn unknown_is_never_a_number() {
        assert_eq!(ev("a / 0", &[("a", 1.0)]), None);
        assert_eq!(ev("a + 1", &[]), None);
        assert_eq!(ev("10 ** 400", &[]), None);
    }

    #[test]
    fn aliases_are_whole_tokens() {
        // `queue` must not be substituted inside `queue_length`.
        let e = Expr::parse("queue_length + queue").unwrap();
        assert_eq!(e.aliases(), ["queue_length", "queue"]);
        assert_eq!(ev("queue_length + queue", &[("queue_length", 10.0), ("queue", 1.0)]), Some(11.0));
    }

    #[test]
    fn nothing_else_is_accepted_and_errors_name_the_column() {
        for (text, col) in [
            ("__import__('os')", 12),
            ("a; b", 2),
            ("a +", 4),
            ("open(x)", 5),
            ("a.b", 2),
            ("(a", 3),
            ("[a, b]", 1),
            ("abs(a, b)", 10),
            ("lambda: 1", 7),
            ("a b", 3),
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert_eq!(e.column, col, "{text}: {e}");
        }
        assert!(Expr::parse(&"(".repeat(500)).is_err());
        assert!(Expr::parse(&"-".repeat(500)).is_err());
    }
}
