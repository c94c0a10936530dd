//! The run lease: two runs on one cluster (a Lambda retried while the last invocation still
//! works, the CLI beside the Lambda) never both act (docs/reliability.md, "Overlapping runs").
//!
//! The lease lives in AWS itself, as the cluster's resource tag `ballast:lease` =
//! `<holder>@<expiry ms>`. A run takes it lazily, right before its first mutating call:
//! 1. read the cluster's tags; a lease of another holder that has not expired means another
//!    run is acting: this run stops, changing nothing;
//! 2. write its own lease (TagResource), expiring [`TTL`] from now; the run renews it
//!    whenever less than [`RENEW_BELOW`] is left (at its calls and during its waits), so a
//!    crashed run blocks the others for at most [`TTL`];
//! 3. wait [`SETTLE`] and read the tags again: if another holder's value is there now, two
//!    runs wrote at once and the later write won; this run stops (nothing was changed yet
//!    but its tag, which the winner overwrote).
//!
//! ECS has no conditional write, so this is optimistic: two runs are excluded unless one
//! wrote more than [`SETTLE`] after reading (a read-to-write gap of one API call, well under a
//! second). A crashed holder's lease expires by itself; a finished run removes its own lease
//! (never another's). Dry runs take no lease: they change nothing.

use ballast_core::duration::Millis;

/// The tag key.
pub const TAG: &str = "ballast:lease";
/// How long to wait before reading back a written lease.
pub const SETTLE: Millis = Millis::secs(2);
/// A lease's lifetime from its last write.
pub const TTL: Millis = Millis::mins(2);
/// Renew when less than this is left.
pub const RENEW_BELOW: Millis = Millis::mins(1);

/// A parsed lease value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub holder: String,
    /// When it expires (backend clock, ms).
    pub until: Millis,
}

impl Lease {
    /// Parses `holder@until`; anything else is no lease (and is overwritten).
    pub fn parse(v: &str) -> Option<Lease> {
        let (holder, until) = v.rsplit_once('@')?;
        Some(Lease { holder: holder.to_string(), until: Millis(until.parse().ok()?) })
    }

    /// The tag value.
    pub fn value(&self) -> String {
        format!("{}@{}", self.holder, self.until.0)
    }

    /// Held by someone else at `now`.
    pub fn blocks(&self, holder: &str, now: Millis) -> bool {
        self.holder != holder && self.until > now
    }
}

/// A holder id for this process: only characters ECS allows in tag values.
pub fn holder_id(prefix: &str, now: Millis) -> String {
    let clean: String = prefix.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    format!("{clean}-{}-{:x}", std::process::id(), now.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_blocks_only_others_until_expiry() {
        let l = Lease::parse("lambda-7-abc@5000").unwrap();
        assert_eq!(l.value(), "lambda-7-abc@5000");
        assert!(l.blocks("cli-1", Millis(4999)));
        assert!(!l.blocks("cli-1", Millis(5000)), "expired");
        assert!(!l.blocks("lambda-7-abc", Millis(0)), "our own");
        assert_eq!(Lease::parse("garbage"), None);
        assert!(holder_id("ballast cli", Millis(1)).starts_with("ballast-cli-"));
    }
}
