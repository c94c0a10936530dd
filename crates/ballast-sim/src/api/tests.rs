use super::*;

#[test]
fn iso8601_round_trips() {
    let t = parse_iso8601("2026-12-03T14:05:07.250Z").unwrap();
    assert_eq!(iso8601(t), "2026-12-03T14:05:07.250Z");
    assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(parse_iso8601("2026-12-03T15:05:07+01:00"), parse_iso8601("2026-12-03T14:05:07Z"));
    assert_eq!(parse_iso8601("yesterday"), None);
}

#[test]
fn tokens_round_trip_and_bad_ones_are_refused() {
    let items: Vec<String> = (0..25).map(|i| format!("arn:x/{i:02}")).collect();
    let req = serde_json::json!({"maxResults": 10});
    let (a, t) = page(items.clone(), &req, 100, 100).unwrap();
    assert_eq!(a.len(), 10);
    let req2 = serde_json::json!({"maxResults": 10, "nextToken": t.unwrap()});
    let (b, t2) = page(items.clone(), &req2, 100, 100).unwrap();
    assert_eq!(b[0], "arn:x/10");
    let req3 = serde_json::json!({"maxResults": 10, "nextToken": t2.unwrap()});
    let (c, t3) = page(items.clone(), &req3, 100, 100).unwrap();
    assert_eq!((c.len(), t3), (5, None));
    let bad = serde_json::json!({"nextToken": "garbage"});
    assert_eq!(page(items.clone(), &bad, 100, 100).unwrap_err().code, "InvalidParameterException");
    let big = serde_json::json!({"maxResults": 101});
    assert!(page(items, &big, 100, 100).is_err());
}

#[test]
fn regions_come_from_the_azs() {
    assert_eq!(crate::engine::region_of("us-east-1a"), "us-east-1");
    assert_eq!(crate::engine::region_of("eu-west-2b"), "eu-west-2");
    assert_eq!(crate::engine::region_of("us-west-2-lax-1a"), "us-west-2");
}
