//! Pure: the targets each agent described for its recent boots (`targets_described`), so that a
//! compact batch naming targets by key can be expanded (ADR 14). Folded from stored events, on
//! replay and after every commit, so a restart knows what was known before it.
//!
//! Only the newest [`BOOTS_PER_AGENT`] boots of an agent are kept: an agent puts the table in a
//! batch's header whenever it cannot be sure the collector stored the description, so a boot
//! older than these only needs it for a backlog that outlived eight restarts. Consecutive boots
//! with the same targets share one table.
//!
//! The collector's snapshot (`intake/snapshot/`) keeps it as each agent's boots with their
//! `(key, target)` pairs; reading it back shares equal tables again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use netmon_events::{AgentId, BootId, DescribedTarget, Event, Target, TargetBook};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::{Origin, StoredEvent};

/// Boots per agent whose descriptions are kept.
pub const BOOTS_PER_AGENT: usize = 8;

/// One boot's target table (shared by the boots that described the same targets).
type Table = Arc<[DescribedTarget]>;

/// Per agent, its newest boots' target tables, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownTargets {
    agents: HashMap<AgentId, VecDeque<(BootId, Table)>>,
}

impl KnownTargets {
    /// Learns the table of a stored `targets_described`; anything else is ignored.
    pub fn apply(&mut self, stored: &StoredEvent) {
        let Event::TargetsDescribed { targets } = &stored.envelope.event else {
            return;
        };
        if stored.origin != Origin::Agent {
            return;
        }
        let envelope = &stored.envelope;
        let boots = self.agents.entry(envelope.agent.clone()).or_default();
        let table: Table = match boots.iter().find(|(_, t)| **t == **targets) {
            Some((_, same)) => Arc::clone(same),
            None => targets.as_slice().into(),
        };
        boots.retain(|(boot, _)| *boot != envelope.boot);
        boots.push_back((envelope.boot.clone(), table));
        while boots.len() > BOOTS_PER_AGENT {
            boots.pop_front();
        }
    }

    /// Distinct tables held (for the memory figure in the logs).
    pub fn tables(&self) -> usize {
        self.agents.values().map(VecDeque::len).sum()
    }
}

/// One agent's boots as the snapshot keeps them: `(boot, [(key, target)])`, oldest first
/// (`DescribedTarget` flattens its target, which a binary format cannot read back).
type Saved<T> = Vec<(AgentId, Vec<(BootId, Vec<(u16, T)>)>)>;

impl Serialize for KnownTargets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let saved: Saved<&Target> = self
            .agents
            .iter()
            .map(|(agent, boots)| {
                let boots = boots
                    .iter()
                    .map(|(boot, table)| {
                        (
                            boot.clone(),
                            table.iter().map(|d| (d.key, &d.target)).collect(),
                        )
                    })
                    .collect();
                (agent.clone(), boots)
            })
            .collect();
        saved.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KnownTargets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = Saved::<Target>::deserialize(deserializer)?;
        let mut known = KnownTargets::default();
        for (agent, boots) in saved {
            let mut kept: VecDeque<(BootId, Table)> = VecDeque::with_capacity(boots.len());
            for (boot, pairs) in boots {
                let targets: Vec<DescribedTarget> = pairs
                    .into_iter()
                    .map(|(key, target)| DescribedTarget { key, target })
                    .collect();
                let table = match kept.iter().find(|(_, t)| **t == *targets) {
                    Some((_, same)) => Arc::clone(same),
                    None => targets.into(),
                };
                kept.push_back((boot, table));
            }
            known.agents.insert(agent, kept);
        }
        Ok(known)
    }
}

impl TargetBook for KnownTargets {
    fn targets(&self, agent: &AgentId, boot: &BootId) -> Option<&[DescribedTarget]> {
        let boots = self.agents.get(agent)?;
        boots.iter().find(|(b, _)| b == boot).map(|(_, t)| &**t)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use netmon_events::testing::target;

    use super::*;
    use crate::store::testkit::stored;

    fn described(boot: &str, names: &[&str]) -> StoredEvent {
        let targets: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| target(n, &format!("10.0.0.{}", i + 1)))
            .collect();
        let event = serde_json::to_string(&Event::TargetsDescribed {
            targets: DescribedTarget::numbered(&targets),
        })
        .unwrap();
        let mut stored = stored(1, Origin::Agent, "a", 2, &event[1..event.len() - 1]);
        stored.envelope.boot = boot.parse().unwrap();
        stored
    }

    #[test]
    fn a_described_boot_resolves_and_others_do_not() {
        let mut known = KnownTargets::default();
        known.apply(&described("b1", &["cổng", "xã"]));
        let agent = "a".parse().unwrap();
        let table = known.targets(&agent, &"b1".parse().unwrap()).unwrap();
        assert_eq!(DescribedTarget::find(table, 2).unwrap().name, "xã");
        assert!(known.targets(&agent, &"b2".parse().unwrap()).is_none());
        assert!(
            known
                .targets(&"z".parse().unwrap(), &"b1".parse().unwrap())
                .is_none()
        );
    }

    #[test]
    fn only_the_newest_boots_are_kept_and_equal_tables_are_shared() {
        let mut known = KnownTargets::default();
        for i in 0..BOOTS_PER_AGENT + 2 {
            known.apply(&described(&format!("b{i}"), &["cổng"]));
        }
        let agent: AgentId = "a".parse().unwrap();
        assert!(known.targets(&agent, &"b0".parse().unwrap()).is_none());
        assert!(known.targets(&agent, &"b1".parse().unwrap()).is_none());
        assert!(known.targets(&agent, &"b2".parse().unwrap()).is_some());
        assert_eq!(known.tables(), BOOTS_PER_AGENT);
        let boots = &known.agents[&agent];
        assert!(Arc::ptr_eq(&boots[0].1, &boots[BOOTS_PER_AGENT - 1].1));
    }

    #[test]
    fn the_snapshot_form_reads_back_equal_with_equal_tables_shared() {
        let mut known = KnownTargets::default();
        known.apply(&described("b1", &["cổng", "xã"]));
        known.apply(&described("b2", &["cổng"]));
        known.apply(&described("b3", &["cổng", "xã"]));
        let bytes = postcard::to_stdvec(&known).unwrap();
        let back: KnownTargets = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, known);
        let boots = &back.agents[&"a".parse().unwrap()];
        assert!(Arc::ptr_eq(&boots[0].1, &boots[2].1));
    }

    #[test]
    fn a_collector_made_event_teaches_nothing() {
        let mut known = KnownTargets::default();
        let mut event = described("b1", &["cổng"]);
        event.origin = Origin::Collector;
        known.apply(&event);
        assert_eq!(known.tables(), 0);
    }
}
