//! The HTTP JSON metric client against a real local server: good answers, Basic credentials
//! from the URL, and every bad answer (huge, slow, failing, not found) refused within the
//! limits, with the credentials in no error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ballast_aws::http::fetch;
use ballast_core::autoscale::extract_field;
use ballast_core::backend::{BackendError, HttpRequest};

/// Serves each connection by `answer(request head and body)`, returning raw response bytes
/// (or sleeping first when the answer says so); sends what each request held.
fn serve(answer: fn(&str) -> (Duration, Vec<u8>)) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                let (wait, resp) = answer(&head);
                let _ = tx.send(head);
                std::thread::sleep(wait);
                let _ = s.write_all(&resp);
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), rx)
}

fn ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())
        .into_bytes();
    r.extend_from_slice(body);
    r
}

fn answer(head: &str) -> (Duration, Vec<u8>) {
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let none = Duration::ZERO;
    match path.as_str() {
        "/api/queues/celery" => (none, ok(br#"{"messages_ready": 42, "backing": {"items": [{"len": 7}]}}"#)),
        "/huge" => (none, ok(&vec![b' '; (1 << 20) + 10])),
        "/huge-chunked" => {
            let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            let chunk = vec![b'1'; 64 * 1024];
            for _ in 0..20 {
                r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                r.extend_from_slice(&chunk);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            (none, r)
        }
        "/html" => (none, ok(b"<html>rate limited</html>")),
        "/slow" => (Duration::from_secs(8), ok(b"{}")),
        "/fail" => (none, b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec()),
        _ => (none, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()),
    }
}

fn get(url: String) -> Result<Vec<u8>, BackendError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(fetch(&HttpRequest { url, post: None }))
}

#[test]
fn reads_a_field_and_sends_url_credentials_as_basic_auth() {
    let (addr, rx) = serve(answer);
    let body = get(format!("http://guest:s3cret@{addr}/api/queues/celery")).unwrap();
    assert_eq!(extract_field(&body, "messages_ready"), Ok(42.0));
    assert_eq!(extract_field(&body, "backing.items.0.len"), Ok(7.0));
    let head = rx.recv().unwrap();
    assert!(head.starts_with("GET /api/queues/celery HTTP/1.1"), "{head}");
    // base64("guest:s3cret")
    assert!(head.contains("authorization: Basic Z3Vlc3Q6czNjcmV0"), "{head}");
    assert!(!head.contains("s3cret@"), "{head}");
}

#[test]
fn posts_the_payload_as_json() {
    let (addr, rx) = serve(answer);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let req = HttpRequest { url: format!("http://{addr}/api/queues/celery"), post: Some(r#"{"q":"celery"}"#.into()) };
    rt.block_on(fetch(&req)).unwrap();
    let head = rx.recv().unwrap();
    assert!(head.starts_with("POST /api/queues/celery"), "{head}");
    assert!(head.contains("content-type: application/json") && head.ends_with(r#"{"q":"celery"}"#), "{head}");
}

#[test]
fn bad_answers_are_refused_within_the_limits_and_never_show_the_credentials() {
    let (addr, _rx) = serve(answer);
    let url = |p: &str| format!("https://user:hunter2@{addr}{p}?token=abc").replace("https://", "http://");
    for (path, want) in [
        ("/huge", "over the 1 MiB limit"),
        ("/huge-chunked", "over the 1 MiB limit"),
        ("/fail", "HTTP 503"),
        ("/nope", "HTTP 404"),
    ] {
        let e = get(url(path)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(want), "{path}: {m}");
        assert!(!m.contains("hunter2") && !m.contains("abc"), "{path}: credentials shown: {m}");
        if path == "/fail" {
            assert!(matches!(e, BackendError::Server { .. }), "{e:?}");
        }
    }
    let body = get(url("/html")).unwrap();
    assert!(extract_field(&body, "messages_ready").unwrap_err().to_string().contains("not JSON"));
    let t0 = Instant::now();
    let e = get(url("/slow")).unwrap_err();
    assert!(matches!(e, BackendError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(7), "the 5 s limit held: {:?}", t0.elapsed());
    assert!(!e.to_string().contains("hunter2"));
    // Nothing listens there.
    let e = get("http://127.0.0.1:9/x".into()).unwrap_err();
    assert!(e.to_string().contains("could not connect"), "{e}");
}

/// Issue [10]: a password of every printable character, percent-encoded as `%(VAR)`
/// substitution writes it, arrives intact as HTTP Basic, and no error shows any of it.
#[test]
fn every_printable_character_reaches_the_endpoint_and_no_error() {
    let (addr, rx) = serve(answer);
    let pw: String = (0x20u8..0x7f).map(char::from).collect();
    let enc = ballast_core::url::encode_component(&pw);
    let url = format!("http://guest:{enc}@{addr}/api/queues/celery");
    ballast_core::url::check(&url).unwrap();
    get(url).unwrap();
    let head = rx.recv().unwrap();
    let want = aws_smithy_types::base64::encode(format!("guest:{pw}"));
    assert!(head.contains(&format!("authorization: Basic {want}")), "{head}");
    let e = get(format!("http://guest:{enc}@{addr}/fail")).unwrap_err().to_string();
    assert!(!e.contains(&enc) && !e.contains("guest"), "{e}");
}
