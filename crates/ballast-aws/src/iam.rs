//! The least-privilege IAM policy for a configuration: exactly the operations of
//! [`crate::calls::OPERATIONS`] that the configured jobs need, scoped to the clusters' ARNs
//! where ECS supports resource-level permissions (docs/aws.md, "IAM").

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::calls::{Need, OPERATIONS, Scope};

/// What the policy is for.
#[derive(Debug, Clone, Default)]
pub struct PolicyFor {
    /// The clusters by name; `None` = clusters found by tag (any cluster in the account).
    pub clusters: Option<Vec<String>>,
    /// The Auto Scaling groups the autoscale and spot-fallback jobs act on.
    pub groups: Vec<String>,
    /// Region (`*` when not given).
    pub region: Option<String>,
    /// Account id (`*` when not given).
    pub account: Option<String>,
    /// The needs of the configured jobs ([`Need::Read`] is always added).
    pub needs: BTreeSet<Need>,
    /// ARNs for a CloudFormation template ([`PolicyFor::for_template`]).
    pub template: bool,
}

/// The ARN partition of a Region: `aws-cn` for China, `aws-us-gov` for GovCloud, `aws-iso`
/// and `aws-iso-b` for the isolated Regions, else `aws` (also when no Region is given).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-isof-") {
        "aws-iso-f"
    } else {
        "aws"
    }
}

/// Checks an account id for `--account`: twelve digits.
pub fn check_account(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("--account {id:?}: an AWS account id is twelve digits (e.g. 123456789012); leave it out for `*`"))
    }
}

/// Checks a Region name for the policy's ARNs (`us-east-1`, `cn-north-1`, …).
pub fn check_region(r: &str) -> Result<(), String> {
    let parts: Vec<&str> = r.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("--region {r:?}: not a Region name (e.g. us-east-1, cn-north-1)")) }
}

impl PolicyFor {
    /// Every need, as the whole set of jobs would have (for tests and the `all` view).
    pub fn all_needs(mut self) -> PolicyFor {
        self.needs = [Need::Read, Need::Discover, Need::Rebalance, Need::Scale, Need::Metrics].into_iter().collect();
        self
    }

    /// A policy for a CloudFormation template: ARNs written with `${AWS::Partition}`,
    /// `${AWS::Region}` and `${AWS::AccountId}` (for `Fn::Sub`).
    pub fn for_template(mut self) -> PolicyFor {
        self.region = Some("${AWS::Region}".into());
        self.account = Some("${AWS::AccountId}".into());
        self.template = true;
        self
    }

    fn partition(&self) -> &str {
        if self.template {
            return "${AWS::Partition}";
        }
        partition(self.region.as_deref().unwrap_or(""))
    }

    fn arn(&self, service: &str, rest: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{rest}",
            self.partition(),
            self.region.as_deref().unwrap_or("*"),
            self.account.as_deref().unwrap_or("*")
        )
    }

    fn cluster_names(&self) -> Vec<String> {
        self.clusters.clone().unwrap_or_else(|| vec!["*".into()])
    }

    fn resources(&self, scope: Scope) -> Vec<String> {
        let per = |f: &dyn Fn(&str) -> String| self.cluster_names().iter().map(|c| f(c)).collect::<Vec<_>>();
        match scope {
            Scope::Cluster => per(&|c| self.arn("ecs", &format!("cluster/{c}"))),
            Scope::ContainerInstance => per(&|c| self.arn("ecs", &format!("container-instance/{c}/*"))),
            Scope::Service => per(&|c| self.arn("ecs", &format!("service/{c}/*"))),
            Scope::Task => per(&|c| self.arn("ecs", &format!("task/{c}/*"))),
            Scope::ServiceOrCluster => {
                let mut v = self.resources(Scope::Service);
                v.extend(self.resources(Scope::Cluster));
                v
            }
            Scope::AnyInCluster | Scope::Any => vec!["*".into()],
            Scope::AutoScalingGroup if self.groups.is_empty() => {
                vec![self.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")]
            }
            Scope::AutoScalingGroup => self
                .groups
                .iter()
                .map(|g| self.arn("autoscaling", &format!("autoScalingGroup:*:autoScalingGroupName/{g}")))
                .collect(),
        }
    }
}

/// The operations (as `prefix:Name`) a configuration needs.
pub fn actions(p: &PolicyFor) -> BTreeSet<String> {
    let mut needs = p.needs.clone();
    needs.insert(Need::Read);
    OPERATIONS.iter().filter(|o| needs.contains(&o.need)).map(|o| format!("{}:{}", o.prefix, o.name)).collect()
}

fn sid(scope: Scope) -> &'static str {
    match scope {
        Scope::Cluster => "EcsClusters",
        Scope::ContainerInstance => "EcsContainerInstances",
        Scope::Service => "EcsServices",
        Scope::Task => "EcsTasks",
        Scope::ServiceOrCluster => "EcsTags",
        Scope::AnyInCluster => "EcsListsInClusters",
        Scope::Any => "NoResourceLevelPermissions",
        Scope::AutoScalingGroup => "AutoScalingGroups",
    }
}

/// The policy document.
pub fn policy(p: &PolicyFor) -> Value {
    let wanted = actions(p);
    let mut by_scope: BTreeMap<Scope, Vec<String>> = BTreeMap::new();
    for o in OPERATIONS {
        let name = format!("{}:{}", o.prefix, o.name);
        if wanted.contains(&name) {
            by_scope.entry(o.scope).or_default().push(name);
        }
    }
    let statements: Vec<Value> = by_scope
        .into_iter()
        .map(|(scope, mut acts)| {
            acts.sort();
            let mut st = json!({"Sid": sid(scope), "Effect": "Allow", "Action": acts, "Resource": p.resources(scope)});
            if scope == Scope::AnyInCluster && p.clusters.is_some() {
                st["Condition"] = json!({"ArnEquals": {"ecs:cluster": p.resources(Scope::Cluster)}});
            }
            st
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The policy's statements as the YAML of a CloudFormation `PolicyDocument.Statement` list,
/// each line indented by `indent` spaces: ARNs go through `Fn::Sub` (see
/// [`PolicyFor::for_template`]).
pub fn template_statements(p: &PolicyFor, indent: usize) -> String {
    let doc = policy(p);
    let pad = " ".repeat(indent);
    let resource = |r: &str| {
        if r.contains("${") { format!("Fn::Sub: {r}") } else { format!("\"{r}\"") }
    };
    let mut out = String::new();
    for st in doc["Statement"].as_array().into_iter().flatten() {
        out.push_str(&format!("{pad}- Sid: {}\n", st["Sid"].as_str().unwrap_or("")));
        out.push_str(&format!("{pad}  Effect: Allow\n{pad}  Action:\n"));
        for a in st["Action"].as_array().into_iter().flatten() {
            out.push_str(&format!("{pad}    - {}\n", a.as_str().unwrap_or("")));
        }
        let res: Vec<&str> = st["Resource"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match res.as_slice() {
            [one] if !one.contains("${") => out.push_str(&format!("{pad}  Resource: {}\n", resource(one))),
            [one] => out.push_str(&format!("{pad}  Resource:\n{pad}    {}\n", resource(one))),
            many => {
                out.push_str(&format!("{pad}  Resource:\n"));
                for r in many {
                    out.push_str(&format!("{pad}    - {}\n", resource(r)));
                }
            }
        }
        if let Some(c) = st.get("Condition") {
            let arns: Vec<&str> =
                c["ArnEquals"]["ecs:cluster"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            out.push_str(&format!("{pad}  Condition:\n{pad}    ArnEquals:\n{pad}      ecs:cluster:\n"));
            for a in arns {
                out.push_str(&format!("{pad}        - {}\n", resource(a)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(doc: &Value) -> BTreeSet<String> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn grants_exactly_what_the_jobs_need() {
        let p =
            PolicyFor { clusters: Some(vec!["shop".into()]), region: Some("us-east-1".into()), ..Default::default() };
        let read = granted(&policy(&p));
        assert!(read.contains("ecs:DescribeTasks") && !read.contains("ecs:StopTask"), "{read:?}");
        let p = PolicyFor { needs: [Need::Rebalance].into_iter().collect(), ..p };
        let doc = policy(&p);
        let rb = granted(&doc);
        assert!(rb.contains("ecs:StopTask") && rb.contains("ecs:PutAttributes"));
        assert!(!rb.contains("ecs:ListClusters") && !rb.contains("autoscaling:SetDesiredCapacity"));
        let text = doc.to_string();
        assert!(text.contains("arn:aws:ecs:us-east-1:*:container-instance/shop/*"), "{text}");
        let cn = PolicyFor { region: Some("cn-north-1".into()), ..p.clone() };
        assert!(policy(&cn).to_string().contains("arn:aws-cn:ecs:cn-north-1:"), "the partition follows the Region");
        let gov = PolicyFor { region: Some("us-gov-west-1".into()), ..p.clone() };
        assert!(policy(&gov).to_string().contains("arn:aws-us-gov:ecs:"));
        assert!(text.contains("\"ecs:cluster\""), "{text}");
        let all = granted(&policy(&p.clone().all_needs()));
        assert_eq!(all.len(), OPERATIONS.len());
    }
}
