//! Issue [10]: the template runs every job it offers. `ballast template --config` writes the
//! deployment of a configuration: for every example configuration its role grants exactly the
//! statements `ballast iam-policy --config` prints (Auto Scaling writes scoped to the named
//! groups, GetMetricData only where metrics are read), cfn-lint accepts it, Spot warnings
//! reach the function only when a cluster has spot-fallback; and `deploy/template.yaml` is
//! the template of no configuration (clusters found by tag).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{ballast, ballast_env, stderr, stdout, temp_file};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const VARS: &[(&str, &str)] = &[("RABBIT_USER", "guest"), ("RABBIT_PASSWORD", "s3cret")];

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "{v:?}");
    v
}

/// `{"Fn::Sub": "arn:${AWS::Partition}:…"}` as the ARN it becomes in us-east-1 of account
/// 123456789012; a plain string as it is; always a list.
fn resolved(v: &Value) -> Vec<String> {
    let one = |x: &Value| -> String {
        match x {
            Value::String(s) => s.clone(),
            Value::Object(m) => m["Fn::Sub"]
                .as_str()
                .expect("Fn::Sub")
                .replace("${AWS::Partition}", "aws")
                .replace("${AWS::Region}", "us-east-1")
                .replace("${AWS::AccountId}", "123456789012"),
            other => panic!("unexpected {other}"),
        }
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        x => vec![one(x)],
    }
}

/// A statement as a comparable value: Sid, Effect, sorted Action, Resource list, Condition's
/// cluster ARNs.
fn normal(st: &Value) -> Value {
    let mut actions: Vec<String> =
        st["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    actions.sort();
    let cond = st.get("Condition").map(|c| resolved(&c["ArnEquals"]["ecs:cluster"]));
    serde_json::json!({
        "Sid": st["Sid"], "Effect": st["Effect"], "Action": actions,
        "Resource": resolved(&st["Resource"]), "Condition": cond,
    })
}

fn template(config: Option<&Path>) -> (String, Value) {
    let mut args = vec!["template".to_string()];
    if let Some(c) = config {
        args.extend(["--config".into(), c.display().to_string()]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ballast_env(&a, VARS);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let v: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("the template is not YAML: {e}"));
    (text, v)
}

fn cfn_lint(text: &str, name: &str) {
    let f = temp_file(name, text);
    let o = Command::new("cfn-lint").arg(&f).output().expect("cfn-lint is needed: python3 -m pip install cfn-lint");
    assert!(
        o.status.success(),
        "cfn-lint {name}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn deploy_template_is_the_template_of_no_configuration() {
    let (text, _) = template(None);
    let file = std::fs::read_to_string(root().join("deploy/template.yaml")).unwrap();
    assert!(text == file, "deploy/template.yaml is stale: run `cargo run -- template > deploy/template.yaml`");
}

#[test]
fn template_grants_exactly_what_iam_policy_prints() {
    for ex in examples() {
        let (text, t) = template(Some(&ex));
        cfn_lint(&text, &format!("template-{}.yaml", ex.file_stem().unwrap().to_string_lossy()));
        let role = &t["Resources"]["Role"]["Properties"]["Policies"];
        let ours = role.as_array().unwrap().iter().find(|p| p["PolicyName"] == "ballast").expect("the ballast policy");
        let mut in_template: Vec<Value> =
            ours["PolicyDocument"]["Statement"].as_array().unwrap().iter().map(normal).collect();
        let cfg = ex.display().to_string();
        let o =
            ballast_env(&["iam-policy", "--config", &cfg, "--region", "us-east-1", "--account", "123456789012"], VARS);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut printed: Vec<Value> = doc["Statement"].as_array().unwrap().iter().map(normal).collect();
        in_template.sort_by_key(|v| v["Sid"].to_string());
        printed.sort_by_key(|v| v["Sid"].to_string());
        assert_eq!(in_template, printed, "{}", ex.display());
        // Spot warnings reach the function exactly when a cluster has spot-fallback.
        let spot = std::fs::read_to_string(if ex.is_dir() { ex.join("my_cluster.yml") } else { ex.clone() })
            .unwrap()
            .contains("spot_fallback:");
        assert_eq!(t["Parameters"]["SpotWarnings"]["Default"], if spot { "true" } else { "false" }, "{}", ex.display());
        let grants = |op: &str| printed.iter().any(|s| s["Action"].as_array().unwrap().iter().any(|a| a == op));
        let text_of = |p: &Path| {
            if p.is_dir() {
                std::fs::read_to_string(p.join("my_cluster.yml")).unwrap()
            } else {
                std::fs::read_to_string(p).unwrap()
            }
        };
        let src = text_of(&ex);
        assert_eq!(
            grants("cloudwatch:GetMetricData"),
            src.contains("cloudwatch:") || src.contains("fleet_request_id: sfr-"),
            "{}",
            ex.display()
        );
        assert_eq!(
            grants("autoscaling:SetDesiredCapacity"),
            src.contains("autoscale_group:") || spot,
            "{}",
            ex.display()
        );
    }
}

#[test]
fn auto_scaling_writes_are_scoped_to_the_named_groups() {
    let ex = root().join("examples/all-jobs.yaml");
    let o = ballast_env(&["iam-policy", "--config", ex.to_str().unwrap(), "--region", "us-east-1"], VARS);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let asg = doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "AutoScalingGroups").expect("scoped");
    let res: Vec<&str> = asg["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(res.len(), 2, "{res:?}");
    assert!(res.iter().all(|r| r.ends_with("autoScalingGroupName/shop-asg") || r.ends_with("autoScalingGroupName/shop-od-backup")), "{res:?}");
}

#[test]
fn the_partition_follows_the_region_and_bad_scopes_are_refused() {
    let o = ballast(&["iam-policy", "--region", "cn-north-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("arn:aws-cn:ecs:cn-north-1:*:cluster/*"), "{}", stdout(&o));
    let o = ballast(&["iam-policy", "--region", "us-gov-west-1"]);
    assert!(stdout(&o).contains("arn:aws-us-gov:ecs:us-gov-west-1:"), "{}", stdout(&o));
    for (args, want) in [
        (vec!["iam-policy", "--account", "12345"], "twelve digits"),
        (vec!["iam-policy", "--account", "*"], "twelve digits"),
        (vec!["iam-policy", "--region", "US East"], "not a Region"),
        (vec!["template", "--code-key", "a key#1"], "S3 key"),
        (vec!["template", "--region", "us-east-1"], "takes no --region"),
    ] {
        let o = ballast(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}
