//! Recovery: what an interrupted run of ballast left, put right before anything else is
//! decided. Only ballast's own marks are touched:
//! - an instance the rebalance job drained (`ballast.drained-by=ballast`) and still DRAINING
//!   goes back to ACTIVE; the mark on an ACTIVE instance is removed one run later (so
//!   ballast's own ACTIVE event is never taken for a join);
//! - a service carrying the surge tag (`from:to@holder`) is **rolled back**, not continued:
//!   its desired count goes back to `from` if it is still `to`; if someone changed it since
//!   (a scale-out after the crash), it is left as it is and only the tag goes. Protection the
//!   interrupted surge set expires by itself (10 minutes) and is left to do so.
//!
//! The autoscale and spot-fallback jobs' drains (`ballast-autoscale`, `ballast-scale-in`,
//! `ballast-spot-notice`) are work that spans runs by design, finished by those jobs.

use crate::action::Action;
use crate::model::{InstanceStatus, Snapshot, attr};
use crate::plan::{Act, Guard, JobKind, Step};

use super::{OWNER, SURGE_TAG, SurgeTag};

/// The recovery steps for `snap` (none when nothing was left).
pub fn steps(snap: &Snapshot) -> Vec<Step> {
    let mut out = Vec::new();
    for inst in snap.instances.iter().filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(OWNER)) {
        if inst.status == InstanceStatus::Draining {
            out.push(Step::one(
                JobKind::Recovery,
                format!(
                    "return {} to ACTIVE: ballast drained it and the run that did was interrupted",
                    inst.ec2_instance_id
                ),
                Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Draining },
                vec![Act::send(Action::SetInstanceState {
                    instance_arns: vec![inst.arn.clone()],
                    status: InstanceStatus::Active,
                    reason: "returning an instance ballast drained (an earlier run was interrupted)".into(),
                })],
            ));
        } else {
            out.push(Step::one(
                JobKind::Recovery,
                format!("remove ballast's drain mark from {} (ACTIVE again)", inst.ec2_instance_id),
                Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Active },
                vec![Act::send(Action::DeleteAttribute {
                    instance_arn: inst.arn.clone(),
                    name: attr::BALLAST_DRAIN.into(),
                })],
            ));
        }
    }
    for svc in &snap.services {
        let Some(v) = svc.tags.get(SURGE_TAG) else { continue };
        let untag = Act::send(Action::UntagService { service: svc.name.clone(), key: SURGE_TAG.into() });
        match SurgeTag::parse(v) {
            Some(t) if svc.desired == t.to && t.to != t.from => out.push(Step::one(
                JobKind::Recovery,
                format!("roll back {}'s interrupted surge ({} → {}, by {})", svc.name, t.from, t.to, t.holder),
                Guard::ServiceDesired { service: svc.name.clone(), desired: t.to },
                vec![
                    Act::send(Action::SetServiceDesired {
                        service: svc.name.clone(),
                        desired: t.from,
                        reason: "rolling back a surge an interrupted run left".into(),
                    }),
                    untag,
                ],
            )),
            Some(t) => out.push(Step::one(
                JobKind::Recovery,
                format!(
                    "drop {}'s surge tag: its desired count is {} now, not the surge's {}, so someone changed it since; left as it is",
                    svc.name, svc.desired, t.to
                ),
                Guard::Always,
                vec![untag],
            )),
            None => out.push(Step::one(
                JobKind::Recovery,
                format!("drop {}'s unreadable surge tag `{v}` (desired count left as it is)", svc.name),
                Guard::Always,
                vec![untag],
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SnapshotBuilder;

    fn tagged(desired_now: u32, tag: &str) -> Snapshot {
        let mut s = SnapshotBuilder::new("c")
            .instance("a", "us-east-1a", 4096, 8192)
            .service("web", 256, 512, &[], &[])
            .tasks("web", "a", 4)
            .build();
        s.services[0].desired = desired_now;
        s.services[0].tags.insert(SURGE_TAG.into(), tag.into());
        s
    }

    fn sends(steps: &[Step]) -> Vec<Action> {
        steps
            .iter()
            .flat_map(|s| s.acts())
            .filter_map(|a| match a {
                Act::Send { action } => Some(action.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_interrupted_surge_is_rolled_back_not_continued() {
        let a = sends(&steps(&tagged(6, "4:6@run-1")));
        assert!(matches!(&a[0], Action::SetServiceDesired { desired: 4, .. }), "{a:?}");
        assert!(matches!(&a[1], Action::UntagService { .. }));
    }

    #[test]
    fn a_scale_out_made_after_the_crash_is_never_reverted() {
        let a = sends(&steps(&tagged(9, "4:6@run-1")));
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(matches!(&a[0], Action::UntagService { .. }));
    }

    #[test]
    fn ballasts_drains_go_back_and_others_are_never_touched() {
        let s = SnapshotBuilder::new("c")
            .instance("mine", "us-east-1a", 4096, 8192)
            .instance("theirs", "us-east-1a", 4096, 8192)
            .instance("scale-in", "us-east-1a", 4096, 8192)
            .draining("mine")
            .draining("theirs")
            .draining("scale-in")
            .attribute("mine", attr::BALLAST_DRAIN, OWNER)
            .attribute("scale-in", attr::BALLAST_DRAIN, "ballast-autoscale")
            .build();
        let st = steps(&s);
        assert_eq!(st.len(), 1);
        assert!(st[0].reason.contains("i-mine"));
    }
}
