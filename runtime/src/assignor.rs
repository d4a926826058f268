//! The task assignor the app's consumer group runs (Kafka's `StreamsPartitionAssignor`,
//! simplified): it assigns **tasks**, not partitions, to the group's members — one member
//! per stream thread of every instance — so the same-numbered partitions of all source
//! topics of a sub-topology (a task's inputs, co-partitioned) always go to one member.
//!
//! It is:
//! - **balanced**: every member gets ⌊tasks / members⌋ tasks or one more;
//! - **sticky**: a member keeps the tasks it had in the previous generation, up to its
//!   share (members are known across rejoins by their instance and thread, from the data
//!   they join with);
//! - **state-aware**: a task that must move goes first to a member of an instance that has
//!   it already — that owned it before, or has its local state — so the new owner restores
//!   only the changelog's tail; then to the member with the fewest tasks.
//!
//! The log's groups are eager (every member gives up its partitions before a rebalance
//! completes), so a member keeping a task simply resumes it.

use std::collections::{BTreeMap, BTreeSet};

use freshet_log::{Assignment, Assignor, MemberInfo};
use freshet_streams::TaskId;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// What a member joins with (its `user_data`, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberData {
    /// The instance's id.
    pub(crate) instance: String,
    /// The stream thread's index in the instance.
    pub(crate) thread: usize,
    /// Tasks with local state in the instance's state directory.
    #[serde(default)]
    pub(crate) local: Vec<String>,
}

impl MemberData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<MemberData> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Parses a task id, `<sub-topology>_<partition>`.
pub(crate) fn parse_task_id(s: &str) -> Option<TaskId> {
    let (sub, p) = s.split_once('_')?;
    Some(TaskId {
        subtopology: sub.parse().ok()?,
        partition: p.parse().ok()?,
    })
}

/// The sticky, co-partitioning, balanced task assignor (see the module docs).
#[derive(Debug)]
pub(crate) struct TaskAssignor {
    /// Each sub-topology with the (resolved) topics its sources read.
    subtopologies: Vec<(u32, Vec<String>)>,
    /// The previous assignment, by member key (`<instance>/<thread>`).
    last: Mutex<BTreeMap<String, BTreeSet<TaskId>>>,
}

impl TaskAssignor {
    pub(crate) fn new(subtopologies: Vec<(u32, Vec<String>)>) -> TaskAssignor {
        TaskAssignor {
            subtopologies,
            last: Mutex::new(BTreeMap::new()),
        }
    }

    /// Every task, with its input partitions, for these partition counts.
    fn tasks(&self, counts: &BTreeMap<String, u32>) -> BTreeMap<TaskId, Vec<(String, u32)>> {
        let mut out = BTreeMap::new();
        for (sub, topics) in &self.subtopologies {
            let n = topics
                .iter()
                .filter_map(|t| counts.get(t))
                .copied()
                .max()
                .unwrap_or(0);
            for p in 0..n {
                let parts = topics
                    .iter()
                    .filter(|t| counts.get(*t).is_some_and(|&c| p < c))
                    .map(|t| (t.clone(), p))
                    .collect();
                out.insert(
                    TaskId {
                        subtopology: *sub,
                        partition: p,
                    },
                    parts,
                );
            }
        }
        out
    }

    /// Assigns `tasks` to members known by `keys` (in member order), with `previous`
    /// ownership and the tasks each member's instance has state for.
    fn assign_tasks(
        tasks: &BTreeSet<TaskId>,
        keys: &[String],
        previous: &BTreeMap<String, BTreeSet<TaskId>>,
        instance_has: &[BTreeSet<TaskId>],
    ) -> Vec<BTreeSet<TaskId>> {
        let m = keys.len();
        let mut out: Vec<BTreeSet<TaskId>> = vec![BTreeSet::new(); m];
        if m == 0 {
            return out;
        }
        let base = tasks.len() / m;
        let extra = tasks.len() % m;
        let prev_of = |i: usize| -> BTreeSet<TaskId> {
            previous
                .get(&keys[i])
                .map(|s| s.intersection(tasks).copied().collect())
                .unwrap_or_default()
        };
        // The members that had the most tasks get the larger shares: fewer tasks move.
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(prev_of(i).len()), i));
        let mut quota = vec![base; m];
        for &i in order.iter().take(extra) {
            quota[i] += 1;
        }
        let mut taken: BTreeSet<TaskId> = BTreeSet::new();
        for &i in &order {
            for t in prev_of(i) {
                if out[i].len() >= quota[i] {
                    break;
                }
                if taken.insert(t) {
                    out[i].insert(t);
                }
            }
        }
        // The rest, spread by partition first so each member gets a mix of sub-topologies.
        let mut rest: Vec<TaskId> = tasks.difference(&taken).copied().collect();
        rest.sort_by_key(|t| (t.partition, t.subtopology));
        for t in rest {
            let best = (0..m)
                .filter(|&i| out[i].len() < quota[i])
                .min_by_key(|&i| (!instance_has[i].contains(&t), out[i].len(), i));
            if let Some(i) = best {
                out[i].insert(t);
            }
        }
        out
    }
}

impl Assignor for TaskAssignor {
    fn name(&self) -> &str {
        "freshet-sticky-tasks"
    }

    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, u32>,
    ) -> BTreeMap<String, Assignment> {
        let tasks = self.tasks(partitions);
        let data: Vec<Option<MemberData>> = members
            .iter()
            .map(|m| MemberData::decode(&m.user_data))
            .collect();
        let keys: Vec<String> = members
            .iter()
            .zip(&data)
            .map(|(m, d)| match d {
                Some(d) => format!("{}/{}", d.instance, d.thread),
                None => m.member_id.clone(),
            })
            .collect();
        let mut last = self.last.lock();
        // What each instance has: local state it reported, and what its members owned.
        let mut by_instance: BTreeMap<&str, BTreeSet<TaskId>> = BTreeMap::new();
        for (key, d) in keys.iter().zip(&data) {
            if let Some(d) = d {
                let has = by_instance.entry(d.instance.as_str()).or_default();
                has.extend(d.local.iter().filter_map(|s| parse_task_id(s)));
                if let Some(prev) = last.get(key) {
                    has.extend(prev.iter().copied());
                }
            }
        }
        let instance_has: Vec<BTreeSet<TaskId>> = keys
            .iter()
            .zip(&data)
            .map(|(key, d)| match d {
                Some(d) => by_instance
                    .get(d.instance.as_str())
                    .cloned()
                    .unwrap_or_default(),
                None => last.get(key).cloned().unwrap_or_default(),
            })
            .collect();
        let ids: BTreeSet<TaskId> = tasks.keys().copied().collect();
        let assigned = Self::assign_tasks(&ids, &keys, &last, &instance_has);
        let mut out = BTreeMap::new();
        let mut remembered = BTreeMap::new();
        for ((member, key), owned) in members.iter().zip(&keys).zip(assigned) {
            let mut parts: Assignment = owned
                .iter()
                .filter_map(|t| tasks.get(t))
                .flatten()
                .cloned()
                .collect();
            parts.sort();
            tracing::debug!(member = %member.member_id, key, tasks = ?owned, "tasks assigned");
            out.insert(member.member_id.clone(), parts);
            remembered.insert(key.clone(), owned);
        }
        *last = remembered;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, instance: &str, thread: usize, local: &[&str]) -> MemberInfo {
        MemberInfo {
            member_id: id.to_string(),
            topics: vec!["a".into(), "b".into(), "app-x-repartition".into()],
            user_data: MemberData {
                instance: instance.into(),
                thread,
                local: local.iter().map(|s| s.to_string()).collect(),
            }
            .encode(),
        }
    }

    fn tasks_of(a: &Assignment) -> BTreeSet<String> {
        a.iter()
            .map(|(t, p)| {
                let sub = if t == "app-x-repartition" { 1 } else { 0 };
                format!("{sub}_{p}")
            })
            .collect()
    }

    fn assignor() -> (TaskAssignor, BTreeMap<String, u32>) {
        let a = TaskAssignor::new(vec![
            (0, vec!["a".into(), "b".into()]),
            (1, vec!["app-x-repartition".into()]),
        ]);
        let counts = BTreeMap::from([
            ("a".to_string(), 4),
            ("b".to_string(), 3),
            ("app-x-repartition".to_string(), 4),
        ]);
        (a, counts)
    }

    #[test]
    fn all_partitions_of_a_task_go_to_one_member_and_shares_are_balanced() {
        let (a, counts) = assignor();
        let members = [
            member("m1", "i1", 0, &[]),
            member("m2", "i1", 1, &[]),
            member("m3", "i2", 0, &[]),
        ];
        let out = a.assign(&members, &counts);
        let mut all = BTreeSet::new();
        for parts in out.values() {
            let n = tasks_of(parts).len();
            assert!((2..=3).contains(&n), "8 tasks over 3 members: {out:?}");
            for (t, p) in parts {
                if t == "a" && *p < 3 {
                    assert!(
                        parts.contains(&("b".to_string(), *p)),
                        "co-partitioned: {parts:?}"
                    );
                }
            }
            all.extend(parts.iter().cloned());
        }
        assert_eq!(all.len(), 4 + 3 + 4, "every partition assigned once");
    }

    #[test]
    fn members_keep_their_tasks_and_moved_tasks_go_where_their_state_is() {
        let (a, counts) = assignor();
        let one = [member("m1", "i1", 0, &[]), member("m2", "i1", 1, &[])];
        let first = a.assign(&one, &counts);
        let before: BTreeMap<String, BTreeSet<String>> = first
            .iter()
            .map(|(m, p)| (m.clone(), tasks_of(p)))
            .collect();
        // A second instance joins: it takes a third of the tasks; the others keep the rest.
        let two = [
            member("m1", "i1", 0, &[]),
            member("m2", "i1", 1, &[]),
            member("m3", "i2", 0, &[]),
        ];
        let second = a.assign(&two, &counts);
        for m in ["m1", "m2"] {
            let now = tasks_of(&second[m]);
            assert!(
                now.is_subset(&before[m]),
                "{m} kept a subset: {now:?} of {:?}",
                before[m]
            );
        }
        let moved = tasks_of(&second["m3"]);
        assert_eq!(moved.len(), 2);
        // The second instance leaves (its threads rejoin with new member ids): its tasks go
        // back to the first instance, which has their state; the others stay.
        let again = [member("m4", "i1", 0, &[]), member("m5", "i1", 1, &[])];
        let third = a.assign(&again, &counts);
        assert!(tasks_of(&second["m1"]).is_subset(&tasks_of(&third["m4"])));
        assert!(tasks_of(&second["m2"]).is_subset(&tasks_of(&third["m5"])));
        assert_eq!(
            tasks_of(&third["m4"]).len() + tasks_of(&third["m5"]).len(),
            8
        );
    }

    #[test]
    fn a_fresh_assignor_prefers_the_instance_with_local_state() {
        let (a, counts) = assignor();
        let members = [
            member("m1", "i1", 0, &[]),
            member("m2", "i2", 0, &["0_0", "0_1", "1_0", "1_1"]),
        ];
        let out = a.assign(&members, &counts);
        assert_eq!(
            tasks_of(&out["m2"]),
            BTreeSet::from(["0_0".into(), "0_1".into(), "1_0".into(), "1_1".into()])
        );
    }
}
