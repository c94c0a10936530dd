//! What must hold after every scheduler pass, whatever the scenario or the policy does.

use std::collections::BTreeMap;

use ballast_core::placement::Rule;

use crate::engine::{InstState, Sim};
use crate::scheduler::TState;

impl Sim {
    /// Checks: no instance over-committed and its accounting exact; no host port used twice;
    /// every live task on an instance satisfying its constraints; a daemon task on every ACTIVE
    /// instance where it fits.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (n, inst) in self.insts.iter().enumerate() {
            if inst.state == InstState::Gone || inst.state == InstState::Booting {
                if !self.node_live[n].is_empty() && inst.state == InstState::Gone {
                    return Err(format!("{} is gone but has tasks", inst.ec2_id));
                }
                continue;
            }
            let node = &self.cs.nodes[n];
            let (mut cpu, mut mem) = (0, 0);
            let mut ports: Vec<u16> = Vec::new();
            let mut groups: BTreeMap<String, u32> = BTreeMap::new();
            for &t in &self.node_live[n] {
                let task = &self.tasks[t];
                if !matches!(task.state, TState::Pending | TState::Running) {
                    continue;
                }
                let spec = match (task.service, task.standalone) {
                    (Some(s), _) => &self.svcs[s].spec,
                    (None, Some(k)) => &self.standalone_specs[k],
                    _ => return Err("a task with no owner".into()),
                };
                cpu += spec.cpu;
                mem += spec.memory;
                ports.extend(spec.host_ports.iter().copied());
                *groups.entry(spec.group.clone()).or_default() += 1;
                for r in &spec.rules {
                    match r {
                        Rule::DistinctInstance if groups[&spec.group] > 1 => {
                            return Err(format!("distinctInstance broken for {} on {}", spec.group, inst.ec2_id));
                        }
                        Rule::MemberOf(_) if !self.cs.member_of_holds(n, spec) => {
                            return Err(format!("memberOf broken for {} on {}", spec.group, inst.ec2_id));
                        }
                        _ => {}
                    }
                }
            }
            if cpu > node.registered.cpu || mem > node.registered.memory {
                return Err(format!(
                    "{} over-committed: {cpu} CPU / {mem} MiB reserved of {:?}",
                    inst.ec2_id, node.registered
                ));
            }
            if node.free.cpu != node.registered.cpu - cpu || node.free.memory != node.registered.memory - mem {
                return Err(format!("{} accounting: free {:?} but {cpu}/{mem} reserved", inst.ec2_id, node.free));
            }
            let mut p = ports.clone();
            p.sort_unstable();
            p.dedup();
            if p.len() != ports.len() {
                return Err(format!("{} has a host port used twice", inst.ec2_id));
            }
            for (g, c) in &groups {
                if self.cs.group_count(g, n) != *c {
                    return Err(format!("{} group count for {g}: {} vs {c}", inst.ec2_id, self.cs.group_count(g, n)));
                }
            }
            if inst.state == InstState::Active {
                for svc in self.svcs.iter().filter(|s| s.daemon) {
                    if !groups.contains_key(&svc.spec.group) && self.cs.fits(n, &svc.spec) {
                        return Err(format!("daemon {} missing on {} where it fits", svc.name, inst.ec2_id));
                    }
                }
            }
        }
        Ok(())
    }
}
