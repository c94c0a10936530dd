//! The ECS cluster query language (memberOf constraints, ListContainerInstances filters).
//!
//! `subject operator [argument]` terms joined by `and`/`&&`, `or`/`||`, negated by `not`/`!`,
//! grouped with parentheses. Subjects: `attribute:<name>`, `ec2InstanceId`, `agentConnected`,
//! `agentVersion`, `registeredAt`, `runningTasksCount`, `task:group`. Operators: `==`/`equals`,
//! `!=`/`not_equals`, `>`, `>=`, `<`, `<=`, `exists`, `!exists`/`not_exists`, `in`,
//! `!in`/`not_in`, `=~`/`matches`, `!~`/`not_matches` (Java regular expressions, whole-value
//! match). Numbers compare numerically when both sides are numbers, otherwise as text.

use regex::Regex;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// One comparison.
    Term {
        /// The subject, e.g. `attribute:ecs.instance-type`.
        subject: String,
        /// The operator.
        op: Op,
        /// The argument values (one, or a list for `in`).
        args: Vec<String>,
        /// The compiled pattern for `=~`/`!~`.
        pattern: Option<Regex>,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `exists`
    Exists,
    /// `!exists`
    NotExists,
    /// `in`
    In,
    /// `!in`
    NotIn,
    /// `=~`
    Matches,
    /// `!~`
    NotMatches,
}

/// What an expression is evaluated against: the values a subject has on one instance
/// (`task:group` may have many; an absent attribute has none).
pub trait Subject {
    /// The values of `subject` on this instance.
    fn values(&self, subject: &str) -> Vec<String>;
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' | '"' => {
                let q = c;
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != q {
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unclosed quote {q} at character {}", i + 1));
                }
                out.push(Tok::Word(chars[start..j].iter().collect()));
                i = j + 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ' ' | '\t' | '\n' | '(' | ')' | '[' | ']' | ',') {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

fn op_of(w: &str) -> Option<Op> {
    Some(match w {
        "==" | "equals" => Op::Eq,
        "!=" | "not_equals" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        "exists" => Op::Exists,
        "!exists" | "not_exists" => Op::NotExists,
        "in" => Op::In,
        "!in" | "not_in" => Op::NotIn,
        "=~" | "matches" => Op::Matches,
        "!~" | "not_matches" => Op::NotMatches,
        _ => return None,
    })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Parentheses and `not`s open around the current position.
    depth: usize,
}

/// How deep parentheses and `not` may nest: far beyond any real expression, and far below
/// what would exhaust the stack (the parser recurses once per level).
pub const MAX_NESTING: usize = 100;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_word(&self, words: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if words.contains(&w.as_str()))
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.is_word(&["or", "||"]) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.is_word(&["and", "&&"]) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("parentheses and `not` nest more than {MAX_NESTING} deep"));
        }
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }
    fn unary_inner(&mut self) -> Result<Expr, String> {
        if self.is_word(&["not", "!"]) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if let Some(Tok::Word(w)) = self.peek()
            && w.len() > 1
            && w.starts_with('!')
            && op_of(w).is_none()
        {
            // `!attribute:x exists` style negation glued to the subject.
            let rest = w[1..].to_string();
            self.toks[self.pos] = Tok::Word(rest);
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err("missing `)`".into());
            }
            return Ok(e);
        }
        self.term()
    }
    fn term(&mut self) -> Result<Expr, String> {
        let subject = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(t) => return Err(format!("expected a subject, found {t:?}")),
            None => return Err("expected a subject, found the end".into()),
        };
        if !is_subject(&subject) {
            return Err(format!(
                "unknown subject `{subject}`; use attribute:<name>, ec2InstanceId, agentConnected, agentVersion, registeredAt, runningTasksCount or task:group"
            ));
        }
        let op = match self.next() {
            Some(Tok::Word(w)) => op_of(&w).ok_or_else(|| format!("unknown operator `{w}` after `{subject}`"))?,
            _ => return Err(format!("expected an operator after `{subject}`")),
        };
        let args = match op {
            Op::Exists | Op::NotExists => vec![],
            Op::In | Op::NotIn => self.list()?,
            _ => match self.next() {
                Some(Tok::Word(w)) if !matches!(w.as_str(), "and" | "or" | "&&" | "||") => vec![w],
                _ => return Err(format!("`{subject}` needs a value after its operator")),
            },
        };
        let args = if subject == "registeredAt" && !matches!(op, Op::Matches | Op::NotMatches) {
            args.iter()
                .map(|a| {
                    epoch_ms(a).map(|ms| ms.to_string()).ok_or_else(|| {
                        format!("registeredAt compares with a date (2018-01-01 or 2018-01-01T12:00:00Z), not `{a}`")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            args
        };
        let pattern = match op {
            Op::Matches | Op::NotMatches => {
                Some(Regex::new(&format!("^(?:{})$", args[0])).map_err(|e| format!("bad pattern `{}`: {e}", args[0]))?)
            }
            _ => None,
        };
        Ok(Expr::Term { subject, op, args, pattern })
    }
    fn list(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Some(Tok::LBracket) {
            return Err("`in` needs a list, e.g. [us-east-1a, us-east-1b]".into());
        }
        let mut out = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Word(w)) => out.push(w),
                Some(Tok::RBracket) if out.is_empty() => return Ok(out),
                _ => return Err("malformed list; write [a, b, c]".into()),
            }
            match self.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::RBracket) => return Ok(out),
                _ => return Err("malformed list; write [a, b, c]".into()),
            }
        }
    }
}

fn is_subject(s: &str) -> bool {
    matches!(
        s,
        "ec2InstanceId" | "agentConnected" | "agentVersion" | "registeredAt" | "runningTasksCount" | "task:group"
    ) || s.strip_prefix("attribute:").is_some_and(|n| !n.is_empty())
}

/// Numbers compare numerically; dotted versions (`1.71.0`, agentVersion) component by
/// component; anything else as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => match (version(a), version(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.cmp(b),
        },
    }
}

fn version(s: &str) -> Option<Vec<u64>> {
    let s = s.strip_prefix('v').unwrap_or(s);
    s.split('.').map(|p| p.parse::<u64>().ok()).collect::<Option<Vec<u64>>>().filter(|v| v.len() >= 2)
}

/// A `registeredAt` argument as milliseconds since the epoch: a number, a date
/// (`2018-01-01`) or a UTC date and time (`2018-01-01T12:30:00Z`, seconds optional).
pub fn epoch_ms(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (s, None),
    };
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [y, m, day] = d[..] else { return None };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs_of_day = match time {
        None => 0,
        Some(t) => {
            let p: Vec<i64> = t.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            match p[..] {
                [h, mi] if (0..24).contains(&h) && (0..60).contains(&mi) => h * 3600 + mi * 60,
                [h, mi, se] if (0..24).contains(&h) && (0..60).contains(&mi) && (0..61).contains(&se) => {
                    h * 3600 + mi * 60 + se
                }
                _ => return None,
            }
        }
    };
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + secs_of_day).ok().map(|s| s * 1000)
}

impl Expr {
    /// Parses an expression; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err("empty expression".into());
        }
        let mut p = Parser { toks, pos: 0, depth: 0 };
        let e = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!("unexpected {:?} after a complete expression", p.toks[p.pos]));
        }
        Ok(e)
    }

    /// Whether any subject in the expression is `task:group` (costlier to evaluate).
    pub fn uses_task_group(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.uses_task_group() || b.uses_task_group(),
            Expr::Not(a) => a.uses_task_group(),
            Expr::Term { subject, .. } => subject == "task:group",
        }
    }

    /// Evaluates against one instance.
    pub fn eval(&self, s: &dyn Subject) -> bool {
        match self {
            Expr::And(a, b) => a.eval(s) && b.eval(s),
            Expr::Or(a, b) => a.eval(s) || b.eval(s),
            Expr::Not(a) => !a.eval(s),
            Expr::Term { subject, op, args, pattern } => {
                let vals = s.values(subject);
                let any = |f: &dyn Fn(&str) -> bool| vals.iter().any(|v| f(v));
                match op {
                    Op::Exists => !vals.is_empty(),
                    Op::NotExists => vals.is_empty(),
                    Op::Eq => any(&|v| v == args[0]),
                    Op::Ne => !any(&|v| v == args[0]),
                    Op::Gt => any(&|v| compare(v, &args[0]).is_gt()),
                    Op::Ge => any(&|v| compare(v, &args[0]).is_ge()),
                    Op::Lt => any(&|v| compare(v, &args[0]).is_lt()),
                    Op::Le => any(&|v| compare(v, &args[0]).is_le()),
                    Op::In => any(&|v| args.iter().any(|a| a == v)),
                    Op::NotIn => !any(&|v| args.iter().any(|a| a == v)),
                    Op::Matches => pattern.as_ref().is_some_and(|p| any(&|v| p.is_match(v))),
                    Op::NotMatches => !pattern.as_ref().is_some_and(|p| any(&|v| p.is_match(v))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Inst(BTreeMap<&'static str, Vec<&'static str>>);
    impl Subject for Inst {
        fn values(&self, subject: &str) -> Vec<String> {
            self.0.get(subject).map(|v| v.iter().map(|s| s.to_string()).collect()).unwrap_or_default()
        }
    }

    fn inst() -> Inst {
        Inst(BTreeMap::from([
            ("attribute:ecs.instance-type", vec!["g2.2xlarge"]),
            ("attribute:ecs.availability-zone", vec!["us-east-1a"]),
            ("ec2InstanceId", vec!["i-abcd1234"]),
            ("runningTasksCount", vec!["1"]),
            ("task:group", vec!["service:production", "database"]),
        ]))
    }

    fn holds(e: &str) -> bool {
        Expr::parse(e).unwrap_or_else(|err| panic!("{e}: {err}")).eval(&inst())
    }

    #[test]
    fn documented_examples() {
        assert!(holds("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d"));
        assert!(holds("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"));
        assert!(holds("task:group == service:production"));
        assert!(!holds("not(task:group == database)"));
        assert!(holds("runningTasksCount == 1"));
        assert!(holds("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']"));
    }

    #[test]
    fn operators_and_precedence() {
        assert!(holds("runningTasksCount >= 1 && runningTasksCount < 2"));
        assert!(holds("runningTasksCount > 0.5"));
        assert!(!holds("runningTasksCount <= 0"));
        assert!(holds("attribute:custom !exists"));
        assert!(holds("attribute:ecs.instance-type exists"));
        assert!(holds("attribute:ecs.instance-type !~ m5.*"));
        assert!(holds("attribute:ecs.availability-zone not_in [us-east-1b]"));
        assert!(holds("attribute:y == x or (runningTasksCount == 1 and not attribute:x exists)"));
        // and binds tighter than or
        assert!(holds("runningTasksCount == 9 and runningTasksCount == 9 or runningTasksCount == 1"));
        assert!(!holds("runningTasksCount == 9 and (runningTasksCount == 9 or runningTasksCount == 1)"));
        // whole-value match, as Java's String.matches
        assert!(!holds("attribute:ecs.instance-type =~ g2"));
    }

    #[test]
    fn registered_at_compares_dates_and_agent_version_compares_versions() {
        assert_eq!(epoch_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(epoch_ms("2018-01-01T00:00:00Z"), Some(1_514_764_800_000));
        assert_eq!(epoch_ms("2018-01-01T12:30"), Some(1_514_764_800_000 + 45_000_000));
        assert_eq!(epoch_ms("2018-13-01"), None);
        let mut m = BTreeMap::new();
        m.insert("registeredAt", vec!["1514764800001"]);
        m.insert("agentVersion", vec!["1.71.0"]);
        let i = Inst(m);
        assert!(Expr::parse("registeredAt > 2018-01-01").unwrap().eval(&i));
        assert!(!Expr::parse("registeredAt >= 2018-01-02T00:00:00Z").unwrap().eval(&i));
        assert!(Expr::parse("registeredAt > yesterday").unwrap_err().contains("a date"));
        assert!(Expr::parse("agentVersion >= 1.9.0").unwrap().eval(&i), "1.71 is after 1.9");
        assert!(!Expr::parse("agentVersion < 1.70.1").unwrap().eval(&i));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}attribute:a == b{}", "(".repeat(20_000), ")".repeat(20_000));
        assert!(Expr::parse(&deep).unwrap_err().contains("nest more than"));
        let nots = format!("{}attribute:a exists", "not ".repeat(20_000));
        assert!(Expr::parse(&nots).unwrap_err().contains("nest more than"));
        let fine = format!("{}attribute:a == b{}", "(".repeat(50), ")".repeat(50));
        assert!(Expr::parse(&fine).is_ok());
    }

    #[test]
    fn errors_are_clear() {
        for bad in [
            "",
            "attribute:x",
            "attribute:x ==",
            "foo == 1",
            "attribute:x in a",
            "(attribute:x exists",
            "attribute:x =~ ([",
            "attribute:x == 'a",
        ] {
            assert!(Expr::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
