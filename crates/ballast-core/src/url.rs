//! Metric URLs as RFC 3986 reads them: `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
//!
//! The authority ends at the first `/`, `?` or `#` after `//` (RFC 3986 §3.2), and the user
//! information is what comes before the authority's last `@` (§3.2.1). So a password holding a
//! raw `/`, `?`, `#` or `@` cannot be written into a URL: it must be percent-encoded. Three
//! things follow, and this module does them:
//! - [`check`] refuses, at load time and without echoing it, a URL with a raw `@` after the
//!   host (a password with a raw `/`, `?` or `#` in it, say: where does it end?), a bad host
//!   or port, or user information with characters it cannot carry raw. A URL it accepts is
//!   read the same way by everyone: the credentials are exactly the user information.
//! - [`redact`] removes the user information and every query value for log lines; a URL
//!   `check` refuses shows nothing past its scheme.
//! - [`encode_component`] percent-encodes a `%(VAR)` value that [`crate::autoscale::substitute`]
//!   puts into the user information or a query value, so any value (every printable character)
//!   arrives intact and the URL stays unambiguous.

/// A URL split at RFC 3986's delimiters; the parts are slices of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// `https://` (with the `://`).
    pub scheme: &'a str,
    /// Before the authority's last `@`, if there is one.
    pub userinfo: Option<&'a str>,
    /// `host[:port]`.
    pub host: &'a str,
    /// Path, query and fragment, from the first `/`, `?` or `#`.
    pub rest: &'a str,
}

/// Splits a `scheme://authority…` URL; `None` without `://`.
pub fn split(url: &str) -> Option<Split<'_>> {
    let i = url.find("://")?;
    let (scheme, after) = (&url[..i + 3], &url[i + 3..]);
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    Some(Split { scheme, userinfo, host, rest })
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(c: u8) -> bool {
    matches!(c, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// Whether `s` is made only of unreserved characters, sub-delimiters, `extra` and well-formed
/// percent-encodings.
fn well_formed(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(unreserved(c) || sub_delim(c) || extra.contains(&c)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `host[:port]` is a valid authority host: a registered name or IPv4 address
/// (unreserved, sub-delimiters, percent-encodings), or an `[IPv6]` literal, with an optional
/// numeric port up to 65535.
fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(r) = host.strip_prefix('[') {
        match r.split_once(']') {
            Some((v6, tail))
                if !v6.is_empty() && v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.') =>
            {
                match tail.strip_prefix(':') {
                    Some(p) => ("v6", Some(p)),
                    None if tail.is_empty() => ("v6", None),
                    None => return false,
                }
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| {
        p.is_empty()
            || (p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n <= 65535))
    });
    !name.is_empty() && well_formed(name, &[]) && port_ok
}

/// What makes a metric URL unusable (see [`check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Scheme,
    Ambiguous,
    Host,
    Userinfo,
}

/// The first problem of a metric URL, if any. A URL without one is read the same way by
/// everyone: its credentials are exactly its user information, and its tokens are exactly its
/// query values.
fn problem(url: &str) -> Option<Problem> {
    let s = match split(url) {
        Some(s) if s.scheme.eq_ignore_ascii_case("http://") || s.scheme.eq_ignore_ascii_case("https://") => s,
        _ => return Some(Problem::Scheme),
    };
    if s.rest.contains('@') {
        return Some(Problem::Ambiguous);
    }
    if !valid_host(s.host) {
        return Some(Problem::Host);
    }
    if s.userinfo.is_some_and(|u| !well_formed(u, b":")) {
        return Some(Problem::Userinfo);
    }
    None
}

/// The URL fit for a log line: the user information (`user:password@`) and every query value
/// replaced by `***` (tokens travel in query strings as often as in the user part). A URL
/// [`check`] refuses (a password with a raw `/`, `?` or `#` in it, say) shows nothing past its
/// scheme: where its secrets end cannot be known.
pub fn redact(url: &str) -> String {
    match (split(url), problem(url)) {
        (Some(s), None) => {
            let user = if s.userinfo.is_some() { "***@" } else { "" };
            format!("{}{user}{}{}", s.scheme, s.host, redact_query(s.rest))
        }
        // A scheme as RFC 3986 writes one (a letter, then letters, digits, `+`, `-`, `.`) is
        // shown; anything else before `://` might be a secret.
        (Some(s), Some(_))
            if s.scheme.len() <= 16
                && s.scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.scheme[..s.scheme.len() - 3].bytes().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) =>
        {
            format!("{}*** (not a valid URL)", s.scheme)
        }
        _ => "*** (not a valid URL)".into(),
    }
}

/// `path?k=***&k2=***#fragment`: every query value replaced.
fn redact_query(rest: &str) -> String {
    let Some((path, query)) = rest.split_once('?') else { return rest.to_string() };
    let (query, frag) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) => format!("{k}=***"),
            None => kv.to_string(),
        })
        .collect();
    format!("{path}?{}{}", q.join("&"), frag.map(|f| format!("#{f}")).unwrap_or_default())
}

/// Checks a metric URL: `http://` or `https://`, no raw `@` after the host, a valid host and
/// port, and user information made only of characters RFC 3986 allows there (others
/// percent-encoded). The error never echoes the URL.
pub fn check(url: &str) -> Result<(), String> {
    match problem(url) {
        None => Ok(()),
        Some(Problem::Scheme) => Err("must start with http:// or https://".into()),
        Some(Problem::Ambiguous) => Err(
            "is ambiguous: an `@` follows the host, so either the user name or password holds a raw `/`, `?` or `#` (and RFC 3986 reads the host as what comes before it) or the path or query holds a raw `@`; percent-encode them (`/` is %2F, `?` %3F, `#` %23, `@` %40), or put the credentials in environment variables as %(USER):%(PASSWORD), which ballast encodes".into(),
        ),
        Some(Problem::Host) => Err("the host (and :port) is not valid; a host is a name or an address, a port is digits up to 65535".into()),
        Some(Problem::Userinfo) => Err(
            "the user name or password holds characters a URL cannot carry raw (such as a space, `@` or a bad `%` escape); percent-encode them, or use %(USER):%(PASSWORD), which ballast encodes".into(),
        ),
    }
}

/// Percent-encodes every byte that is not unreserved (`A-Z a-z 0-9 - . _ ~`), as RFC 3986
/// §2.1 writes it (upper-case hex).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &c in value.as_bytes() {
        if unreserved(c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed escape stays as written).
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The URL without its user information, and the decoded `user:password` bytes that HTTP
/// Basic authentication sends (RFC 7617), if the URL has user information.
pub fn credentials(url: &str) -> (String, Option<Vec<u8>>) {
    match split(url) {
        Some(s) if s.userinfo.is_some() => {
            (format!("{}{}{}", s.scheme, s.host, s.rest), s.userinfo.map(percent_decode))
        }
        _ => (url.to_string(), None),
    }
}

/// Where in a URL a `%(VAR)` reference stands, judged from the configuration text around it on
/// its line (`before` ends just before `%(`, `after` starts just after `)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPart {
    /// Not in a URL, or in its host or path: substituted as is.
    Other,
    /// In the user information: percent-encoded.
    Userinfo,
    /// A query value (after `=`): percent-encoded.
    QueryValue,
}

/// Classifies a reference by the text around it: after the line's last `://` with no blank or
/// quote since, before any `/`, `?`, `#` or `@`, and with an `@` ahead before the authority
/// ends: user information. After a `?` and directly in a `key=` value: a query value.
pub fn url_part(before: &str, after: &str) -> UrlPart {
    let line = before.rsplit('\n').next().unwrap_or(before);
    let Some(i) = line.rfind("://") else { return UrlPart::Other };
    let since = &line[i + 3..];
    let ends_token = |c: char| c.is_whitespace() || c == '"' || c == '\'';
    if since.contains(ends_token) {
        return UrlPart::Other;
    }
    if !since.contains(['/', '?', '#', '@']) {
        let ahead = after.split('\n').next().unwrap_or(after);
        let stop = ahead.find(|c: char| ends_token(c) || matches!(c, '/' | '?' | '#')).unwrap_or(ahead.len());
        return if ahead[..stop].contains('@') { UrlPart::Userinfo } else { UrlPart::Other };
    }
    match since.find('?') {
        Some(q) if !since[q..].contains('#') => match since[q..].rfind(['?', '&', '=']) {
            Some(j) if since.as_bytes()[q + j] == b'=' => UrlPart::QueryValue,
            _ => UrlPart::Other,
        },
        _ => UrlPart::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_query_values() {
        assert_eq!(
            redact("https://u:p@h.example:8443/api/q?token=s3cret&x=1#f"),
            "https://***@h.example:8443/api/q?token=***&x=***#f"
        );
        assert_eq!(redact("http://h/api/queues/celery"), "http://h/api/queues/celery");
        assert_eq!(redact("http://a@b@h/x"), "http://*** (not a valid URL)");
        assert_eq!(redact("u:p@h://x"), "*** (not a valid URL)");
        // The case: a raw `/` and `#` in the password; no one can tell where it ends.
        assert_eq!(redact("http://guest:s3/cr#t@host/api"), "http://*** (not a valid URL)");
        assert_eq!(redact("https://x:12345?@host/"), "https://*** (not a valid URL)");
        assert_eq!(redact("https://h?:pw=@host/"), "https://*** (not a valid URL)");
        assert_eq!(redact("https://u:p w@host/"), "https://*** (not a valid URL)");
        assert_eq!(redact("user:pw@host/x"), "*** (not a valid URL)");
        assert_eq!(redact("s3cret://h"), "s3cret://*** (not a valid URL)");
    }

    #[test]
    fn checks_urls_per_rfc_3986_without_echoing_credentials() {
        assert!(check("https://u:p%2Fq@h.example:15672/api/queues/%2F/celery").is_ok());
        assert!(check("http://[::1]:8080/x").is_ok());
        assert!(check("http://127.0.0.1/x").is_ok());
        let e = check("http://guest:s3/cr#t@host/api").unwrap_err();
        assert!(e.contains("ambiguous") && !e.contains("s3/") && !e.contains("cr#t"), "{e}");
        assert!(check("https://h.example/q?email=a@b").is_err());
        assert!(check("https://h.example/q?email=a%40b").is_ok());
        let e = check("http://us er:pw@host/").unwrap_err();
        assert!(!e.contains("pw") && !e.contains("us er"), "{e}");
        assert!(check("http://host:99999/").is_err());
        assert!(check("http://host:8a/").is_err());
        assert!(check("ftp://host/").is_err());
        assert!(check("http:///x").is_err());
    }

    #[test]
    fn encodes_and_decodes_every_byte() {
        let all: String = (0x20u8..0x7f).map(char::from).chain("é€\u{1F600}".chars()).collect();
        let enc = encode_component(&all);
        assert!(enc.bytes().all(|c| unreserved(c) || c == b'%'));
        assert_eq!(percent_decode(&enc), all.as_bytes());
        let (bare, cred) = credentials(&format!("https://{}:{}@h/x", encode_component("a@b"), enc));
        assert_eq!(bare, "https://h/x");
        assert_eq!(cred.unwrap(), format!("a@b:{all}").into_bytes());
    }

    #[test]
    fn tells_where_a_reference_stands() {
        use UrlPart::*;
        assert_eq!(url_part("url: https://", ":%(P)@h/x"), Userinfo);
        assert_eq!(url_part("url: https://%(U):", "@h/x"), Userinfo);
        assert_eq!(url_part("url: https://", ".example.com/x"), Other);
        assert_eq!(url_part("url: https://u:p@", "/x"), Other);
        assert_eq!(url_part("url: https://h/api/", "/x"), Other);
        assert_eq!(url_part("url: https://h/api?token=", "&x=1"), QueryValue);
        assert_eq!(url_part("url: https://h/api?", ""), Other);
        assert_eq!(url_part("url: https://h/a b?t=", ""), Other);
        assert_eq!(url_part("min: ", ""), Other);
        assert_eq!(url_part("url: \"https://", ":x@h\""), Userinfo);
    }
}
