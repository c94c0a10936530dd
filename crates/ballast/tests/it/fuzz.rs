//! Every parser that takes outside input, fed arbitrary and mutated input: it must return an
//! error, never panic.

use ballast_core::cql::Expr;
use ballast_core::duration::parse_duration;
use ballast_core::event::{Envelope, InstanceStateChange};
use ballast_core::model::{Constraint, Strategy};
use ballast_sim::Scenario;
use proptest::prelude::*;

const VALID: &str = include_str!("../../../../scenarios/demo.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn small_parsers_never_panic(s in "\\PC{0,60}") {
        let _ = Expr::parse(&s);
        let _ = parse_duration(&s);
        let _ = Strategy::parse(&s);
        let _ = Constraint::parse(&format!("memberOf({s})"));
        let _ = s.parse::<ballast_core::metrics::Measure>();
    }

    #[test]
    fn cql_like_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "attribute:ecs.instance-type", "==", "!=", "=~", "!~", "in", "not_in", "exists", "!exists", "[", "]", ",",
        "(", ")", "and", "or", "not", "!", "'g2.*'", "\"x", "t3.*", "runningTasksCount", ">=", "1", "task:group", "[a,", "(("
    ]), 0..12)) {
        let _ = Expr::parse(&parts.join(" "));
    }

    #[test]
    fn scenario_parser_never_panics_on_arbitrary_text(s in "\\PC{0,400}") {
        let _ = Scenario::parse(&s, "fuzz.yaml");
    }

    #[test]
    fn scenario_parser_never_panics_on_mutated_scenarios(pos in 0usize..4000, len in 0usize..40, junk in "\\PC{0,20}") {
        let mut text = VALID.to_string();
        let start = text.char_indices().map(|(i, _)| i).nth(pos % text.chars().count()).unwrap_or(0);
        let end = text[start..].char_indices().map(|(i, _)| start + i).nth(len).unwrap_or(text.len());
        text.replace_range(start..end, &junk);
        let _ = Scenario::parse(&text, "fuzz.yaml");
    }

    #[test]
    fn config_parser_never_panics(s in "\\PC{0,300}") {
        let env = ballast_core::config::EnvSettings::default();
        let _ = ballast::config_file::parse(&s, "fuzz.yaml", &env);
        let _ = ballast::config_file::parse(&format!("clusters:\n  c:\n    rebalance: {{{s}}}\n"), "fuzz.yaml", &env);
    }

    #[test]
    fn event_parser_never_panics(s in "\\PC{0,300}") {
        let _ = serde_json::from_str::<Envelope<InstanceStateChange>>(&s);
    }

    #[test]
    fn spot_fallback_section_never_panics(s in "\\PC{0,200}") {
        let env = ballast_core::config::EnvSettings::default();
        let _ = ballast::config_file::parse(&format!("clusters:\n  c:\n    spot_fallback: {{{s}}}\n"), "fuzz.yaml", &env);
    }

    #[test]
    fn lambda_event_classifier_never_panics(s in "\\PC{0,300}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
            let _ = ballast::lambda::classify(&v);
        }
        let wrapped = serde_json::json!({"Records": [{"Sns": {"Message": s.clone()}}]});
        let _ = ballast::lambda::classify(&wrapped);
        let _ = ballast::lambda::classify(&serde_json::json!({"source": "aws.ecs", "detail-type": "ECS Container Instance State Change", "detail": s}));
    }

    #[test]
    fn metric_arithmetic_never_panics(s in "\\PC{0,80}") {
        if let Ok(e) = ballast_core::expr::Expr::parse(&s) {
            let _ = e.eval(&std::collections::BTreeMap::new());
        }
    }

    #[test]
    fn metric_arithmetic_like_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "a", "b", "1", "2.5", "1e3", "+", "-", "*", "/", "**", "(", ")", "[", "]", ",", "min", "max", "abs", "0"
    ]), 0..30)) {
        if let Ok(e) = ballast_core::expr::Expr::parse(&parts.join(" ")) {
            let vals = [("a".to_string(), 2.0), ("b".to_string(), 0.0)].into_iter().collect();
            let _ = e.eval(&vals);
        }
    }

    #[test]
    fn seed_003_definitions_never_panic(s in "\\PC{0,300}") {
        let env = ballast_core::config::EnvSettings::default();
        let _ = ballast::config_file::parse_definition(&s, "fuzz.yml", &env);
        let _ = ballast::config_file::parse_definition(&format!("autoscale_group: g\nservices:\n  w:\n    max: 2\n    events: [{{{s}}}]\n"), "fuzz.yml", &env);
    }

    #[test]
    fn http_metric_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..400), path in "[a-z0-9.]{0,20}") {
        let _ = ballast_core::autoscale::extract_field(&body, &path);
    }

    #[test]
    fn json_like_http_bodies_never_panic(parts in prop::collection::vec(prop::sample::select(vec![
        "{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "1", "-1e999", "1e999", "null", "true", "\"x\"", "0.5", " "
    ]), 0..60), path in prop::sample::select(vec!["a", "a.b", "a.0", "0", "a.b.0.a", ""])) {
        let _ = ballast_core::autoscale::extract_field(parts.join("").as_bytes(), path);
    }

    #[test]
    fn url_redaction_never_panics_and_never_keeps_a_password(
        user in "[ -~]{1,8}", pw in "[ -~]{6,12}", rest in "\\PC{0,40}"
    ) {
        // Raw (unencoded) credentials of any printable characters: whatever RFC 3986 makes of
        // the URL, the log line never holds the password.
        let url = format!("https://{user}:{pw}@host.example/{rest}");
        let shown = ballast_core::autoscale::redact_url(&url);
        prop_assert!(!shown.contains(&format!(":{pw}")), "{}", shown);
        let _ = ballast_core::autoscale::redact_url(&rest);
    }

    /// Issue [10]: credentials and tokens from `%(VAR)`, each any string of printable
    /// characters (and some beyond ASCII), load, reach the endpoint exactly (HTTP Basic decodes
    /// to `user:password`), never show in the redacted URL, and never show in an error.
    #[test]
    fn substituted_secrets_of_any_printable_characters_stay_secret(
        user in "[ -~]{1,12}", pw in "[ -~é€]{1,24}", token in "[ -~]{1,16}"
    ) {
        use ballast_core::autoscale::Source;
        let text = "autoscale_group: g\nservices:\n  w:\n    max: 2\n    metric_sources:\n      third_party:\n        - url: https://%(U):%(P)@rabbit.example:15672/api/queues/%2F/celery?token=%(T)\n          statistics: [{name: messages_ready, alias: q}]\n    events: [{metric: q, action: 1, min: 5, max: null}]\n";
        let vars = |k: &str| match k { "U" => Some(user.clone()), "P" => Some(pw.clone()), "T" => Some(token.clone()), _ => None };
        let env = ballast_core::config::EnvSettings::default();
        let cfg = ballast::config_file::parse_definition_with(text, "c.yml", &env, &vars);
        let cfg = match cfg { Ok(c) => c, Err(e) => { prop_assert!(false, "refused: {}", e); unreachable!() } };
        let svc = &cfg.autoscale.as_ref().unwrap().services["w"];
        let Some(Source::Http { url, .. }) = svc.metrics.get("q") else { panic!("no http source") };
        prop_assert_eq!(ballast_core::autoscale::redact_url(url), "https://***@rabbit.example:15672/api/queues/%2F/celery?token=***");
        let (bare, basic) = ballast_core::url::credentials(url);
        prop_assert_eq!(basic.unwrap(), format!("{user}:{pw}").into_bytes());
        prop_assert!(bare.starts_with("https://rabbit.example:15672/api/queues/%2F/celery?token="));
        prop_assert_eq!(ballast_core::url::percent_decode(bare.rsplit('=').next().unwrap()), token.as_bytes());
        // The same values where they are wrong: an error names the place, never the value.
        for bad in ["    max: %(P)\n", "    min: %(P)\n", "    bogus_%(P): 1\n", "    enabled: %(P)\n"] {
            let t = text.replace("    max: 2\n", bad);
            if let Err(e) = ballast::config_file::parse_definition_with(&t, "c.yml", &env, &vars) {
                let e = e.to_string();
                if pw.chars().count() >= 4 {
                    prop_assert!(!e.contains(pw.as_str()), "{}", e);
                }
                prop_assert!(!e.contains(&format!("\"{pw}\"")) && !e.contains(&format!("`{pw}`")), "{}", e);
            }
        }
    }
}
