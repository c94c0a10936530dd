//! Durations written as `30s`, `5m`, `2h` (also `1h30m`, `250ms`), held as milliseconds.

use std::fmt;

/// A duration in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Millis(n * 1000)
    }
    /// `n` minutes.
    pub const fn mins(n: u64) -> Self {
        Millis(n * 60_000)
    }
    /// Whole seconds (rounded down).
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl std::ops::Add for Millis {
    type Output = Millis;
    fn add(self, o: Millis) -> Millis {
        Millis(self.0.saturating_add(o.0))
    }
}

impl std::ops::Mul<u64> for Millis {
    type Output = Millis;
    fn mul(self, k: u64) -> Millis {
        Millis(self.0.saturating_mul(k))
    }
}

impl std::ops::Sub for Millis {
    type Output = Millis;
    fn sub(self, o: Millis) -> Millis {
        Millis(self.0.saturating_sub(o.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 / 1000;
        let ms = self.0 % 1000;
        if ms != 0 {
            return write!(f, "{}ms", self.0);
        }
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if sec > 0 || out.is_empty() {
            out.push_str(&format!("{sec}s"));
        }
        f.write_str(&out)
    }
}

/// Parses `30s`, `5m`, `2h`, `1h30m`, `250ms`; a bare number is rejected (the unit matters).
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. 30s, 5m or 2h".into());
    }
    let bytes = t.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("`{t}` is not a duration; write e.g. 30s, 5m or 2h"));
        }
        let n: u64 = t[start..i].parse().map_err(|_| format!("`{t}`: number too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor = match &t[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(format!("`{t}` needs a unit: s, m or h (e.g. {n}s)")),
            u => return Err(format!("`{t}`: unknown unit `{u}`; use ms, s, m or h")),
        };
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{t}`: duration too large"))?;
    }
    Ok(Millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(parse_duration("30s").unwrap(), Millis::secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Millis::mins(5));
        assert_eq!(parse_duration("1h30m").unwrap(), Millis::mins(90));
        assert_eq!(parse_duration("250ms").unwrap(), Millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(Millis::mins(90).to_string(), "1h30m");
        assert_eq!(Millis(0).to_string(), "0s");
    }
}
