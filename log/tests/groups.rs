//! Consumer groups: assignment, eager rebalancing on join / leave / session timeout /
//! partition growth, generation fencing, committed offsets and lag.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use freshet_log::{
    Acks, Assignment, Assignor, Error, GroupMember, Log, MemberConfig, MemberInfo,
    OffsetAndMetadata, RangeAssignor, RebalanceEvent, RebalanceListener, Record, TopicConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn parts(topic: &str, ps: impl IntoIterator<Item = u32>) -> Assignment {
    ps.into_iter().map(|p| (topic.to_string(), p)).collect()
}

/// Panics if any partition is owned by two members.
fn assert_exclusive(members: &[&mut GroupMember]) {
    let mut owner: BTreeMap<(String, u32), &str> = BTreeMap::new();
    for m in members {
        for tp in m.assignment() {
            if let Some(other) = owner.insert(tp.clone(), m.member_id()) {
                panic!("{tp:?} owned by both {other} and {} at once", m.member_id());
            }
        }
    }
}

/// Polls every member in turn, checking exclusive ownership after each poll, until a whole
/// round changes nothing. Returns each member's non-trivial events in order.
fn settle(members: &mut [&mut GroupMember]) -> freshet_log::Result<Vec<Vec<RebalanceEvent>>> {
    let mut events = vec![Vec::new(); members.len()];
    for _round in 0..50 {
        let mut changed = false;
        for i in 0..members.len() {
            let ev = members[i].poll()?;
            assert_exclusive(members);
            if ev != RebalanceEvent::Unchanged {
                changed = true;
                events[i].push(ev);
            }
        }
        if !changed {
            return Ok(events);
        }
    }
    panic!("the group did not settle in 50 rounds");
}

fn offsets(tps: &[(String, u32)], offset: i64) -> Vec<(String, u32, OffsetAndMetadata)> {
    tps.iter()
        .map(|(t, p)| (t.clone(), *p, OffsetAndMetadata::new(offset)))
        .collect()
}

#[test]
fn range_assignor_gives_partition_p_of_equal_topics_to_one_member() -> TestResult {
    // Straight from the assignor: contiguous ranges in member order, extras first.
    let members: Vec<MemberInfo> = ["m-0", "m-1", "m-2"]
        .iter()
        .map(|id| MemberInfo {
            member_id: id.to_string(),
            topics: vec!["a".into(), "b".into()],
            user_data: Vec::new(),
        })
        .collect();
    let counts = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 5)]);
    let got = RangeAssignor.assign(&members, &counts);
    let mut want0 = parts("a", [0, 1]);
    want0.extend(parts("b", [0, 1]));
    assert_eq!(got["m-0"], want0);
    let mut want2 = parts("a", [4]);
    want2.extend(parts("b", [4]));
    assert_eq!(got["m-2"], want2);

    // Through the group: four members over two 6-partition topics and a 3-partition one.
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(6))?;
    log.create_topic("b", TopicConfig::partitions(6))?;
    log.create_topic("c", TopicConfig::partitions(3))?;
    let mut ms = Vec::new();
    for _ in 0..4 {
        ms.push(log.join_group("g", &["a", "b", "c"], MemberConfig::default())?);
    }
    let mut refs: Vec<&mut GroupMember> = ms.iter_mut().collect();
    settle(&mut refs)?;
    let mut seen_a = BTreeSet::new();
    for m in &ms {
        let of = |t: &str| -> BTreeSet<u32> {
            m.assignment()
                .iter()
                .filter(|(x, _)| x == t)
                .map(|(_, p)| *p)
                .collect()
        };
        assert_eq!(of("a"), of("b"), "{} is not co-partitioned", m.member_id());
        seen_a.extend(of("a"));
    }
    assert_eq!(seen_a, (0..6).collect::<BTreeSet<u32>>());
    let total: usize = ms.iter().map(|m| m.assignment().len()).sum();
    assert_eq!(total, 6 + 6 + 3);
    Ok(())
}

/// Records listener callbacks; commits the revoked partitions' progress, as Kafka apps do.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    revoke_commits: Vec<Result<(), String>>,
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, member: &GroupMember, partitions: &[(String, u32)]) {
        self.events.push(format!(
            "revoked {} at generation {}",
            partitions.len(),
            member.generation()
        ));
        self.revoke_commits.push(
            member
                .commit(&offsets(partitions, 7))
                .map_err(|e| e.to_string()),
        );
    }
    fn on_partitions_assigned(&mut self, member: &GroupMember, partitions: &[(String, u32)]) {
        self.events.push(format!(
            "assigned {:?} at generation {}",
            partitions
                .iter()
                .map(|(t, p)| format!("{t}-{p}"))
                .collect::<Vec<_>>(),
            member.generation()
        ));
    }
}

#[test]
fn joining_member_gets_half_after_the_first_revokes_everything() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(4))?;
    let mut l1 = Recorder::default();
    let mut l2 = Recorder::default();
    let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
    assert_eq!(
        m1.poll_with(&mut l1)?,
        RebalanceEvent::Assigned {
            generation: 1,
            partitions: parts("a", 0..4)
        }
    );

    let mut m2 = log.join_group("g", &["a"], MemberConfig::default())?;
    // m2 waits for m1 to give its partitions up; m1 still owns them meanwhile.
    assert_eq!(m2.poll_with(&mut l2)?, RebalanceEvent::Unchanged);
    assert_exclusive(&[&mut m1, &mut m2]);
    assert_eq!(m1.assignment().len(), 4);
    assert_eq!(m2.assignment().len(), 0);
    assert_eq!(m2.poll_with(&mut l2)?, RebalanceEvent::Unchanged);

    assert_eq!(
        m1.poll_with(&mut l1)?,
        RebalanceEvent::Revoked(parts("a", 0..4))
    );
    assert_exclusive(&[&mut m1, &mut m2]);
    assert!(m1.assignment().is_empty());
    assert_eq!(
        m1.poll_with(&mut l1)?,
        RebalanceEvent::Assigned {
            generation: 2,
            partitions: parts("a", 0..2)
        }
    );
    assert_exclusive(&[&mut m1, &mut m2]);
    assert_eq!(
        m2.poll_with(&mut l2)?,
        RebalanceEvent::Assigned {
            generation: 2,
            partitions: parts("a", 2..4)
        }
    );
    assert_exclusive(&[&mut m1, &mut m2]);
    assert_eq!(m1.poll_with(&mut l1)?, RebalanceEvent::Unchanged);
    assert_eq!(m2.poll_with(&mut l2)?, RebalanceEvent::Unchanged);

    assert_eq!(
        l1.events,
        [
            r#"assigned ["a-0", "a-1", "a-2", "a-3"] at generation 1"#,
            "revoked 4 at generation 1",
            r#"assigned ["a-0", "a-1"] at generation 2"#,
        ]
    );
    assert_eq!(l2.events, [r#"assigned ["a-2", "a-3"] at generation 2"#]);
    // The listener committed under the old generation, before the rebalance completed.
    assert_eq!(l1.revoke_commits, [Ok(())]);
    assert_eq!(
        log.committed_offset("g", "a", 3)?,
        Some(OffsetAndMetadata::new(7))
    );
    Ok(())
}

#[test]
fn leaving_member_hands_its_partitions_to_the_other() -> TestResult {
    for by_drop in [false, true] {
        let dir = tempfile::tempdir()?;
        let log = Log::open(dir.path())?;
        log.create_topic("a", TopicConfig::partitions(4))?;
        let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
        let mut m2 = log.join_group("g", &["a"], MemberConfig::default())?;
        settle(&mut [&mut m1, &mut m2])?;
        assert_eq!(m1.assignment(), parts("a", 0..2));
        assert_eq!(m2.assignment(), parts("a", 2..4));
        let generation = m1.generation();

        if by_drop {
            drop(m2);
        } else {
            m2.leave()?;
        }
        let events = settle(&mut [&mut m1])?;
        assert_eq!(
            events[0],
            [
                RebalanceEvent::Revoked(parts("a", 0..2)),
                RebalanceEvent::Assigned {
                    generation: generation + 1,
                    partitions: parts("a", 0..4)
                }
            ],
            "by_drop={by_drop}"
        );
    }
    Ok(())
}

#[test]
fn member_that_stops_polling_loses_its_partitions_after_the_session_timeout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(4))?;
    let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
    let short = MemberConfig {
        session_timeout: Duration::from_millis(200),
        ..MemberConfig::default()
    };
    let mut m2 = log.join_group("g", &["a"], short)?;
    settle(&mut [&mut m1, &mut m2])?;
    let m2_last_poll = Instant::now();
    assert_eq!(m1.assignment(), parts("a", 0..2));

    // m2 goes silent; m1 keeps polling and keeps its half until m2's session ends.
    let took_over = loop {
        let ev = m1.poll()?;
        let now = Instant::now();
        if m1.assignment().len() == 4 {
            break now;
        }
        if ev == RebalanceEvent::Unchanged && !matches!(m1.assignment().len(), 0 | 2) {
            panic!("unexpected assignment {:?}", m1.assignment());
        }
        assert!(
            now.duration_since(m2_last_poll) < Duration::from_secs(10),
            "m2 was never expired"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        took_over.duration_since(m2_last_poll) > Duration::from_millis(200),
        "m1 took over after only {:?}",
        took_over.duration_since(m2_last_poll)
    );
    assert_eq!(m1.assignment(), parts("a", 0..4));

    // The expired member learns it is out and owns nothing.
    assert!(matches!(m2.poll(), Err(Error::UnknownMember { .. })));
    assert!(m2.assignment().is_empty());
    Ok(())
}

#[test]
fn member_of_an_older_generation_cannot_commit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(6))?;
    let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
    let mut m2 = log.join_group("g", &["a"], MemberConfig::default())?;
    settle(&mut [&mut m1, &mut m2])?;
    let old = m2.generation();
    m2.commit(&offsets(m2.assignment(), 1))?;

    // A third member joins; the rebalance completes while m2 (slow) has not polled since
    // it revoked.
    let mut m3 = log.join_group("g", &["a"], MemberConfig::default())?;
    assert!(matches!(m2.poll()?, RebalanceEvent::Revoked(_)));
    m3.poll()?;
    assert!(matches!(m1.poll()?, RebalanceEvent::Revoked(_)));
    assert!(matches!(m1.poll()?, RebalanceEvent::Assigned { .. }));
    let current = m1.generation();
    assert_eq!(current, old + 1);

    let err = m2
        .commit(&[("a".to_string(), 5, OffsetAndMetadata::new(99))])
        .expect_err("a stale generation must be fenced");
    assert!(
        matches!(err, Error::IllegalGeneration { ref group, generation, current: c }
            if group == "g" && generation == old && c == current),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("group 'g': generation {old} is stale (current {current})")
    );
    assert_eq!(
        log.committed_offset("g", "a", 5)?,
        Some(OffsetAndMetadata::new(1))
    );

    // Once it catches up, it commits again.
    settle(&mut [&mut m1, &mut m2, &mut m3])?;
    assert_eq!(m2.generation(), current);
    m2.commit(&offsets(m2.assignment(), 2))?;
    Ok(())
}

#[test]
fn commit_without_a_generation_is_refused_while_the_group_has_members() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(1))?;
    let one = [("a".to_string(), 0, OffsetAndMetadata::new(3))];
    log.commit_offsets("g", None, &one)?;

    let mut m = log.join_group("g", &["a"], MemberConfig::default())?;
    m.poll()?;
    let err = log
        .commit_offsets("g", None, &one)
        .expect_err("refused while the group has a member");
    assert!(matches!(err, Error::IllegalGeneration { .. }), "{err}");
    // A wrong generation is refused too; the member's own is accepted.
    assert!(matches!(
        log.commit_offsets("g", Some(m.generation() + 5), &one),
        Err(Error::IllegalGeneration { .. })
    ));
    log.commit_offsets("g", Some(m.generation()), &one)?;

    m.leave()?;
    log.commit_offsets(
        "g",
        None,
        &[("a".to_string(), 0, OffsetAndMetadata::new(4))],
    )?;
    assert_eq!(
        log.committed_offset("g", "a", 0)?,
        Some(OffsetAndMetadata::new(4))
    );
    Ok(())
}

#[test]
fn committed_offsets_and_metadata_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blob = "{\"stream_time\":{\"0_1\":1700000000123}}\nmulti-line ✓ \u{0}";
    {
        let log = Log::open(dir.path())?;
        log.create_topic("a", TopicConfig::partitions(3))?;
        log.commit_offsets(
            "g",
            None,
            &[
                ("a".to_string(), 0, OffsetAndMetadata::new(1)),
                (
                    "a".to_string(),
                    1,
                    OffsetAndMetadata {
                        offset: 20,
                        metadata: "old".into(),
                    },
                ),
            ],
        )?;
        // The latest commit per partition wins.
        log.commit_offsets(
            "g",
            None,
            &[(
                "a".to_string(),
                1,
                OffsetAndMetadata {
                    offset: 42,
                    metadata: blob.into(),
                },
            )],
        )?;
        log.commit_offsets(
            "other",
            None,
            &[("a".to_string(), 2, OffsetAndMetadata::new(5))],
        )?;
    }
    let log = Log::open(dir.path())?;
    assert_eq!(
        log.committed_offset("g", "a", 1)?,
        Some(OffsetAndMetadata {
            offset: 42,
            metadata: blob.into()
        })
    );
    let all = log.committed_offsets("g")?;
    assert_eq!(all.len(), 2);
    assert_eq!(all[&("a".to_string(), 0)], OffsetAndMetadata::new(1));
    assert_eq!(log.committed_offset("g", "a", 2)?, None);
    assert_eq!(log.list_groups()?, ["g", "other"]);

    // Read-only openers see the same.
    let ro = Log::open_read_only(dir.path())?;
    assert_eq!(
        ro.committed_offset("g", "a", 1)?.map(|o| o.metadata),
        Some(blob.to_string())
    );
    Ok(())
}

#[test]
fn transactional_offset_commits_apply_only_when_the_transaction_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = Log::open(dir.path())?;
        log.create_topic("a", TopicConfig::partitions(1))?;
        let mut tx = log.transactional_producer("app", Acks::Written)?;
        tx.begin()?;
        tx.send_offsets(
            "g",
            None,
            &[("a".to_string(), 0, OffsetAndMetadata::new(10))],
        )?;
        assert_eq!(log.committed_offset("g", "a", 0)?, None);
        tx.abort()?;
        assert_eq!(log.committed_offset("g", "a", 0)?, None);
        tx.begin()?;
        tx.send_offsets(
            "g",
            None,
            &[("a".to_string(), 0, OffsetAndMetadata::new(20))],
        )?;
        tx.commit()?;
        assert_eq!(
            log.committed_offset("g", "a", 0)?,
            Some(OffsetAndMetadata::new(20))
        );
        // Left open at "crash": recovery aborts it.
        tx.begin()?;
        tx.send_offsets(
            "g",
            None,
            &[("a".to_string(), 0, OffsetAndMetadata::new(30))],
        )?;
    }
    let log = Log::open(dir.path())?;
    assert_eq!(
        log.committed_offset("g", "a", 0)?,
        Some(OffsetAndMetadata::new(20))
    );
    Ok(())
}

#[test]
fn group_lag_is_the_last_stable_offset_minus_the_committed_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("t", TopicConfig::partitions(2))?;
    let recs =
        |n: usize| -> Vec<Record> { (0..n).map(|i| Record::new("k", format!("v{i}"))).collect() };
    log.append("t", 0, &recs(10), Acks::Written)?;
    log.append("t", 1, &recs(5), Acks::Written)?;
    assert!(matches!(
        log.group_lag("g"),
        Err(Error::UnknownGroup { .. })
    ));

    log.commit_offsets(
        "g",
        None,
        &[("t".to_string(), 0, OffsetAndMetadata::new(4))],
    )?;
    let lag = log.group_lag("g")?;
    let view: Vec<(u32, Option<i64>, i64, i64)> = lag
        .iter()
        .map(|l| (l.partition, l.committed, l.end, l.lag))
        .collect();
    assert_eq!(view, [(0, Some(4), 10, 6), (1, None, 5, 5)]);
    assert!(lag.iter().all(|l| l.topic == "t"));

    // An open transaction does not count (not readable yet); deleted records do not either.
    let mut tx = log.transactional_producer("p", Acks::Written)?;
    tx.begin()?;
    tx.append("t", 0, &recs(3))?;
    log.delete_records("t", 1, 2)?;
    let view: Vec<(u32, Option<i64>, i64, i64)> = log
        .group_lag("g")?
        .iter()
        .map(|l| (l.partition, l.committed, l.end, l.lag))
        .collect();
    assert_eq!(view, [(0, Some(4), 10, 6), (1, None, 5, 3)]);
    tx.commit()?;
    // 3 records and the commit marker.
    assert_eq!(log.group_lag("g")?[0].lag, 10);

    // A member's subscription alone makes the group and its topics show up.
    log.create_topic("u", TopicConfig::partitions(1))?;
    let mut m = log.join_group("h", &["u"], MemberConfig::default())?;
    m.poll()?;
    let lag = log.group_lag("h")?;
    assert_eq!(lag.len(), 1);
    assert_eq!(
        (lag[0].topic.as_str(), lag[0].committed, lag[0].lag),
        ("u", None, 0)
    );
    Ok(())
}

#[test]
fn group_generation_keeps_increasing_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let last = {
        let log = Log::open(dir.path())?;
        log.create_topic("a", TopicConfig::partitions(2))?;
        let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
        settle(&mut [&mut m1])?;
        assert_eq!(m1.generation(), 1);
        let mut m2 = log.join_group("g", &["a"], MemberConfig::default())?;
        settle(&mut [&mut m1, &mut m2])?;
        drop(m2);
        settle(&mut [&mut m1])?;
        m1.generation()
    };
    assert_eq!(last, 3);
    for round in 1..=2 {
        let log = Log::open(dir.path())?;
        let mut m = log.join_group("g", &["a"], MemberConfig::default())?;
        settle(&mut [&mut m])?;
        assert_eq!(m.generation(), last + round);
    }
    Ok(())
}

#[test]
fn adding_partitions_to_a_subscribed_topic_rebalances_onto_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(2))?;
    let mut m1 = log.join_group("g", &["a"], MemberConfig::default())?;
    let mut m2 = log.join_group("g", &["a"], MemberConfig::default())?;
    settle(&mut [&mut m1, &mut m2])?;
    assert_eq!(m1.assignment(), parts("a", [0]));
    assert_eq!(m2.assignment(), parts("a", [1]));
    let generation = m1.generation();

    log.alter_topic("a", Some(4), &[])?;
    let events = settle(&mut [&mut m1, &mut m2])?;
    assert!(matches!(events[0][0], RebalanceEvent::Revoked(_)));
    assert_eq!(m1.generation(), generation + 1);
    assert_eq!(m1.assignment(), parts("a", 0..2));
    assert_eq!(m2.assignment(), parts("a", 2..4));
    Ok(())
}

/// Gives every partition to the member with the greatest id; remembers what it was shown.
#[derive(Debug, Default)]
struct AllToLast {
    seen: Mutex<Vec<Vec<MemberInfo>>>,
}

impl Assignor for AllToLast {
    fn name(&self) -> &str {
        "all-to-last"
    }
    fn assign(
        &self,
        members: &[MemberInfo],
        partitions: &BTreeMap<String, u32>,
    ) -> BTreeMap<String, Assignment> {
        self.seen
            .lock()
            .expect("not poisoned")
            .push(members.to_vec());
        let mut out: BTreeMap<String, Assignment> = members
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        if let Some(last) = members.last() {
            out.insert(
                last.member_id.clone(),
                partitions
                    .iter()
                    .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
                    .collect(),
            );
        }
        out
    }
}

#[test]
fn custom_assignor_decides_the_assignment() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(3))?;
    log.create_topic("b", TopicConfig::partitions(1))?;
    let assignor = Arc::new(AllToLast::default());
    let config = |data: &[u8]| MemberConfig {
        assignor: assignor.clone(),
        user_data: data.to_vec(),
        ..MemberConfig::default()
    };
    let mut m1 = log.join_group("g", &["a", "b"], config(b"one"))?;
    let mut m2 = log.join_group("g", &["a"], config(b"two"))?;
    settle(&mut [&mut m1, &mut m2])?;
    assert!(m1.assignment().is_empty());
    let mut want = parts("a", 0..3);
    want.extend(parts("b", [0]));
    assert_eq!(m2.assignment(), want);

    let seen = assignor.seen.lock().expect("not poisoned");
    let last = seen.last().expect("the assignor ran");
    let shown: Vec<(&str, &[u8], Vec<&str>)> = last
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                m.user_data.as_slice(),
                m.topics.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (m1.member_id(), &b"one"[..], vec!["a", "b"]),
            (m2.member_id(), &b"two"[..], vec!["a"]),
        ]
    );
    Ok(())
}

#[test]
fn deleting_a_subscribed_topic_rebalances_it_away() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    log.create_topic("a", TopicConfig::partitions(2))?;
    log.create_topic("b", TopicConfig::partitions(2))?;
    let mut m1 = log.join_group("g", &["a", "b"], MemberConfig::default())?;
    let mut m2 = log.join_group("g", &["a", "b"], MemberConfig::default())?;
    settle(&mut [&mut m1, &mut m2])?;
    assert_eq!(m1.assignment().len() + m2.assignment().len(), 4);

    log.delete_topic("b")?;
    settle(&mut [&mut m1, &mut m2])?;
    assert_eq!(m1.assignment(), parts("a", [0]));
    assert_eq!(m2.assignment(), parts("a", [1]));
    Ok(())
}

#[test]
fn offsets_of_a_deleted_topic_are_gone_for_good() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = Log::open(dir.path())?;
        log.create_topic("t", TopicConfig::partitions(2))?;
        log.create_topic("u", TopicConfig::partitions(1))?;
        log.commit_offsets(
            "g",
            None,
            &[
                ("t".to_string(), 0, OffsetAndMetadata::new(7)),
                ("t".to_string(), 1, OffsetAndMetadata::new(8)),
                ("u".to_string(), 0, OffsetAndMetadata::new(9)),
            ],
        )?;
        log.delete_topic("t")?;
        assert_eq!(log.committed_offset("g", "t", 0)?, None);
        // A topic recreated under the old name is a new topic: nothing is committed in it.
        log.create_topic("t", TopicConfig::partitions(2))?;
        assert_eq!(log.committed_offset("g", "t", 0)?, None);
    }
    let log = Log::open(dir.path())?;
    assert_eq!(
        log.committed_offset("g", "t", 0)?,
        None,
        "came back after reopen"
    );
    assert_eq!(log.committed_offset("g", "t", 1)?, None);
    assert_eq!(
        log.committed_offset("g", "u", 0)?,
        Some(OffsetAndMetadata::new(9))
    );
    Ok(())
}
