//! The foreign-key table-table join (KIP-213): `KTable::join_fk`, `left_join_fk` and their
//! `_with` variants.
//!
//! Ported from Kafka's `KTableKTableForeignKeyJoinIntegrationTest` (which runs on the
//! `TopologyTestDriver`), inputs and asserted outputs kept exactly, for every combination
//! of inner/left join, materialized or not, and with or without the "rejoin" (the result
//! joined again with the left table) — Kafka's `NO_OPTIMIZATION` cases with unversioned
//! tables:
//! doJoinFromLeftThenDeleteLeftEntity, doJoinFromRightThenDeleteRightEntity,
//! shouldEmitTombstoneWhenDeletingNonJoiningRecords,
//! shouldNotEmitTombstonesWhenDeletingNonExistingRecords,
//! joinShouldProduceNullsWhenValueHasNonMatchingForeignKey,
//! shouldUnsubscribeOldForeignKeyIfLeftSideIsUpdated,
//! shouldEmitRecordOnNullForeignKeyForLeftJoins, shouldEmitRecordWhenOldAndNewFkDiffer, and
//! the unversioned branch of shouldIgnoreOutOfOrderRecordsIffVersioned.
//!
//! Not ported: the versioned-table cases (freshet has no versioned stores) and the
//! `OPTIMIZE` cases (no topology optimization). Kafka's `UniqueTopicSerdeScope` (which
//! checks that every serde is used with one topic only) has no counterpart. The processor
//! tests of the `foreignkeyjoin` package use mocked contexts; the stale-response case of
//! `ResponseJoinProcessorSupplierTest` is covered here through a task fed by hand
//! ([`stale_responses_are_discarded`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use freshet_streams::testing::TopologyTestDriver;
use freshet_streams::{
    Consumed, InputRecord, KTable, Materialized, PartitionCount, Result, SinkRecord,
    StreamsBuilder, Task, TaskConfig, TaskEnv, TopicName, Utf8,
};

const LEFT_TABLE: &str = "left_table";
const RIGHT_TABLE: &str = "right_table";
const OUTPUT: &str = "output-topic";
const REJOIN_OUTPUT: &str = "rejoin-output-topic";
const BASE: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Case {
    left_join: bool,
    materialized: bool,
    rejoin: bool,
}

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for left_join in [true, false] {
        for materialized in [true, false] {
            for rejoin in [true, false] {
                all.push(Case {
                    left_join,
                    materialized,
                    rejoin,
                });
            }
        }
    }
    all
}

type Extractor = fn(&String) -> Option<String>;

// The extractor's argument type is the table's value type, `&String`.
#[allow(clippy::ptr_arg)]
fn split_extractor(value: &String) -> Option<String> {
    value.split('|').nth(1).map(str::to_string)
}

/// Kafka's `getTopology`.
fn topology(case: Case, extractor: Extractor) -> Result<freshet_streams::Topology> {
    let builder = StreamsBuilder::new();
    let left: KTable<'_, String, String> = builder.table_with(
        LEFT_TABLE,
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    let right: KTable<'_, String, String> = builder.table_with(
        RIGHT_TABLE,
        Consumed::with(Utf8, Utf8),
        Materialized::default(),
    );
    // The cache suppresses some of the unnecessary tombstones the tests assert.
    let main: Materialized<String, String> = if case.materialized {
        Materialized::named("store")
    } else {
        Materialized::default()
    }
    .with_value_serde(Utf8)
    .with_caching_disabled();
    let rejoin_materialized = || -> Materialized<String, String> {
        if case.materialized {
            Materialized::named("store-rejoin")
                .with_value_serde(Utf8)
                .with_caching_disabled()
        } else {
            Materialized::default().with_value_serde(Utf8)
        }
    };
    let show = |v: Option<&String>| v.map_or("null".to_string(), Clone::clone);
    if case.left_join {
        let fk_join = left.left_join_fk_with(
            &right,
            extractor,
            move |v1, v2| format!("({v1},{})", show(v2)),
            main,
        );
        fk_join.to_stream().to(OUTPUT);
        if case.rejoin {
            fk_join
                .left_join_with(
                    &left,
                    move |v1, v2| format!("rejoin({v1},{})", show(v2)),
                    rejoin_materialized(),
                )
                .to_stream()
                .to(REJOIN_OUTPUT);
        }
    } else {
        let fk_join = left.join_fk_with(&right, extractor, |v1, v2| format!("({v1},{v2})"), main);
        fk_join.to_stream().to(OUTPUT);
        if case.rejoin {
            fk_join
                .join_with(
                    &left,
                    |v1, v2| format!("rejoin({v1},{v2})"),
                    rejoin_materialized(),
                )
                .to_stream()
                .to(REJOIN_OUTPUT);
        }
    }
    builder.build()
}

type Map = BTreeMap<String, Option<String>>;

/// `mkMap(mkEntry(k, v), …)`; `None` is Java's null.
fn map(entries: &[(&str, Option<&str>)]) -> Map {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

/// A map of non-null values.
fn vals(entries: &[(&str, &str)]) -> Map {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

struct Fixture {
    case: Case,
    driver: TopologyTestDriver,
}

impl Fixture {
    fn new(case: Case) -> Result<Fixture> {
        Fixture::with_extractor(case, split_extractor)
    }

    fn with_extractor(case: Case, extractor: Extractor) -> Result<Fixture> {
        Ok(Fixture {
            case,
            driver: TopologyTestDriver::new(topology(case, extractor)?)?,
        })
    }

    fn left(&self, key: &str, value: Option<&str>, ts: i64) -> Result<()> {
        self.driver
            .input::<String, Option<String>>(LEFT_TABLE)
            .pipe(key.into(), value.map(str::to_string), ts)
    }

    fn right(&self, key: &str, value: Option<&str>, ts: i64) -> Result<()> {
        self.driver
            .input::<String, Option<String>>(RIGHT_TABLE)
            .pipe(key.into(), value.map(str::to_string), ts)
    }

    /// Kafka's `readKeyValuesToMap`: the last value per key.
    fn output(&self, topic: &str) -> Result<Map> {
        Ok(self
            .driver
            .output::<String, Option<String>>(topic)
            .read_key_values()?
            .into_iter()
            .collect())
    }

    fn check_output(&self, expected: Map) -> Result<()> {
        assert_eq!(self.output(OUTPUT)?, expected, "output of {:?}", self.case);
        Ok(())
    }

    fn check_rejoin(&self, expected: Map) -> Result<()> {
        if self.case.rejoin {
            assert_eq!(
                self.output(REJOIN_OUTPUT)?,
                expected,
                "rejoin of {:?}",
                self.case
            );
        }
        Ok(())
    }

    /// Kafka's `asMap(store)`, when the result is materialized.
    fn check_store(&self, expected: Map) -> Result<()> {
        if self.case.materialized {
            let store = self.driver.key_value_store::<String, String>("store")?;
            let got: Map = store
                .all()?
                .into_iter()
                .map(|(k, v, _)| (k, Some(v)))
                .collect();
            assert_eq!(got, expected, "store of {:?}", self.case);
        }
        Ok(())
    }
}

#[test]
fn do_join_from_left_then_delete_left_entity() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        // Pre-populate the RHS records. This test is all about what happens when we
        // add/remove LHS records.
        f.right("rhs1", Some("rhsValue1"), BASE)?;
        f.right("rhs2", Some("rhsValue2"), BASE + 1)?;
        f.right("rhs3", Some("rhsValue3"), BASE + 2)?; // unreferenced: in no result
        f.check_output(Map::new())?;
        f.check_rejoin(Map::new())?;
        f.check_store(Map::new())?;

        f.left("lhs1", Some("lhsValue1|rhs1"), BASE + 3)?;
        f.left("lhs2", Some("lhsValue2|rhs2"), BASE + 4)?;
        let expected = vals(&[
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2|rhs2,rhsValue2)"),
        ]);
        f.check_output(expected.clone())?;
        f.check_rejoin(vals(&[
            ("lhs1", "rejoin((lhsValue1|rhs1,rhsValue1),lhsValue1|rhs1)"),
            ("lhs2", "rejoin((lhsValue2|rhs2,rhsValue2),lhsValue2|rhs2)"),
        ]))?;
        f.check_store(expected)?;

        // Add another reference to an existing FK.
        f.left("lhs3", Some("lhsValue3|rhs1"), BASE + 5)?;
        f.check_output(vals(&[("lhs3", "(lhsValue3|rhs1,rhsValue1)")]))?;
        f.check_rejoin(vals(&[(
            "lhs3",
            "rejoin((lhsValue3|rhs1,rhsValue1),lhsValue3|rhs1)",
        )]))?;
        f.check_store(vals(&[
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2|rhs2,rhsValue2)"),
            ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
        ]))?;

        // Delete one LHS entity: one delete is propagated down to the output.
        f.left("lhs1", None, BASE + 6)?;
        f.check_output(map(&[("lhs1", None)]))?;
        f.check_rejoin(map(&[("lhs1", None)]))?;
        f.check_store(vals(&[
            ("lhs2", "(lhsValue2|rhs2,rhsValue2)"),
            ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
        ]))?;
    }
    Ok(())
}

#[test]
fn do_join_from_right_then_delete_right_entity() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        let left_join = case.left_join;
        // Pre-populate the LHS records. This test is all about what happens when we
        // add/remove RHS records.
        f.left("lhs1", Some("lhsValue1|rhs1"), BASE)?;
        f.left("lhs2", Some("lhsValue2|rhs2"), BASE + 1)?;
        f.left("lhs3", Some("lhsValue3|rhs1"), BASE + 2)?;
        let expected = if left_join {
            vals(&[
                ("lhs1", "(lhsValue1|rhs1,null)"),
                ("lhs2", "(lhsValue2|rhs2,null)"),
                ("lhs3", "(lhsValue3|rhs1,null)"),
            ])
        } else {
            Map::new()
        };
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        f.right("rhs1", Some("rhsValue1"), BASE + 3)?;
        f.check_output(vals(&[
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
        ]))?;
        f.check_store(if left_join {
            vals(&[
                ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
                ("lhs2", "(lhsValue2|rhs2,null)"),
                ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
            ])
        } else {
            vals(&[
                ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
                ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
            ])
        })?;

        f.right("rhs2", Some("rhsValue2"), BASE + 4)?;
        f.check_output(vals(&[("lhs2", "(lhsValue2|rhs2,rhsValue2)")]))?;
        let all = vals(&[
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2|rhs2,rhsValue2)"),
            ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
        ]);
        f.check_store(all.clone())?;

        f.right("rhs3", Some("rhsValue3"), BASE + 5)?; // unreferenced: in no result
        f.check_output(Map::new())?;
        f.check_store(all)?;

        // Delete the RHS entity: every matching key gets a delete.
        f.right("rhs1", None, BASE + 6)?;
        f.check_output(if left_join {
            vals(&[
                ("lhs1", "(lhsValue1|rhs1,null)"),
                ("lhs3", "(lhsValue3|rhs1,null)"),
            ])
        } else {
            map(&[("lhs1", None), ("lhs3", None)])
        })?;
        f.check_store(if left_join {
            vals(&[
                ("lhs1", "(lhsValue1|rhs1,null)"),
                ("lhs2", "(lhsValue2|rhs2,rhsValue2)"),
                ("lhs3", "(lhsValue3|rhs1,null)"),
            ])
        } else {
            vals(&[("lhs2", "(lhsValue2|rhs2,rhsValue2)")])
        })?;
    }
    Ok(())
}

#[test]
fn should_emit_tombstone_when_deleting_non_joining_records() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        f.left("lhs1", Some("lhsValue1|rhs1"), BASE)?;
        let expected = if case.left_join {
            vals(&[("lhs1", "(lhsValue1|rhs1,null)")])
        } else {
            Map::new()
        };
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // Deleting a non-joining record produces an unnecessary tombstone for inner joins,
        // because it's not possible to know whether a result was previously emitted. For
        // the left join, the tombstone is necessary.
        f.left("lhs1", None, BASE + 1)?;
        f.check_output(map(&[("lhs1", None)]))?;
        f.check_store(Map::new())?;

        // Deleting a non-existing record is idempotent.
        f.left("lhs1", None, BASE + 2)?;
        f.check_output(Map::new())?;
        f.check_store(Map::new())?;
    }
    Ok(())
}

#[test]
fn should_not_emit_tombstones_when_deleting_non_existing_records() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        // Deleting a record that never existed doesn't need to emit tombstones.
        f.left("lhs1", None, BASE)?;
        f.check_output(Map::new())?;
        f.check_store(Map::new())?;
    }
    Ok(())
}

#[test]
fn join_should_produce_nulls_when_value_has_non_matching_foreign_key() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        let left_join = case.left_join;
        let left_only = |v: &str| {
            if left_join {
                vals(&[("lhs1", v)])
            } else {
                Map::new()
            }
        };
        f.left("lhs1", Some("lhsValue1|rhs1"), BASE)?;
        // No output for a new inner join on a non-existent FK; the left join emits the
        // half-joined output.
        f.check_output(left_only("(lhsValue1|rhs1,null)"))?;
        f.check_store(left_only("(lhsValue1|rhs1,null)"))?;
        // "Moving" the subscription to another non-existent FK: an unnecessary tombstone
        // for the inner join; a necessary update for the left join.
        f.left("lhs1", Some("lhsValue1|rhs2"), BASE + 1)?;
        f.check_output(map(&[(
            "lhs1",
            left_join.then_some("(lhsValue1|rhs2,null)"),
        )]))?;
        f.check_store(left_only("(lhsValue1|rhs2,null)"))?;
        // Moving it again to yet another non-existent FK has the same effect.
        f.left("lhs1", Some("lhsValue1|rhs3"), BASE + 2)?;
        f.check_output(map(&[(
            "lhs1",
            left_join.then_some("(lhsValue1|rhs3,null)"),
        )]))?;
        f.check_store(left_only("(lhsValue1|rhs3,null)"))?;

        // An RHS record previously referenced, but not now: no change whatsoever.
        f.right("rhs1", Some("rhsValue1"), BASE + 3)?;
        f.check_output(Map::new())?;
        f.check_store(left_only("(lhsValue1|rhs3,null)"))?;

        // Changing to a FK that exists completes the join.
        f.left("lhs1", Some("lhsValue1|rhs1"), BASE + 4)?;
        f.check_output(vals(&[("lhs1", "(lhsValue1|rhs1,rhsValue1)")]))?;
        f.check_store(vals(&[("lhs1", "(lhsValue1|rhs1,rhsValue1)")]))?;

        // Updating it again to a non-existent one: a tombstone for the inner join, an
        // update for the left join.
        f.left("lhs1", Some("lhsValue1|rhs2"), BASE + 5)?;
        f.check_output(map(&[(
            "lhs1",
            left_join.then_some("(lhsValue1|rhs2,null)"),
        )]))?;
        f.check_store(left_only("(lhsValue1|rhs2,null)"))?;
    }
    Ok(())
}

#[test]
fn should_unsubscribe_old_foreign_key_if_left_side_is_updated() -> Result<()> {
    for case in cases() {
        let f = Fixture::new(case)?;
        f.right("rhs1", Some("rhsValue1"), BASE)?;
        f.right("rhs2", Some("rhsValue2"), BASE + 1)?;
        f.check_output(Map::new())?;
        f.check_store(Map::new())?;

        f.left("lhs1", Some("lhsValue1|rhs1"), BASE + 2)?;
        let expected = vals(&[("lhs1", "(lhsValue1|rhs1,rhsValue1)")]);
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // Change the LHS foreign key reference.
        f.left("lhs1", Some("lhsValue1|rhs2"), BASE + 3)?;
        let expected = vals(&[("lhs1", "(lhsValue1|rhs2,rhsValue2)")]);
        f.check_output(expected.clone())?;
        f.check_store(expected.clone())?;

        // An RHS update on the old foreign key reaches nobody.
        f.right("rhs1", Some("rhsValue1Delta"), BASE + 4)?;
        f.check_output(Map::new())?;
        f.check_store(expected)?;
    }
    Ok(())
}

#[test]
fn should_emit_record_on_null_foreign_key_for_left_joins() -> Result<()> {
    for materialized in [true, false] {
        for rejoin in [true, false] {
            let case = Case {
                left_join: true,
                materialized,
                rejoin,
            };
            let f = Fixture::with_extractor(case, |_| None)?;
            f.left("lhs1", Some("lhsValue1|rhs1"), BASE)?;
            let expected = vals(&[("lhs1", "(lhsValue1|rhs1,null)")]);
            f.check_output(expected.clone())?;
            f.check_store(expected)?;
        }
    }
    Ok(())
}

/// Kafka's `subscriptionStoreKey`: `{rhs length}{rhs}{lhs}`.
fn subscription_store_key(lhs: &str, rhs: &str) -> Bytes {
    let mut key = (rhs.len() as i32).to_be_bytes().to_vec();
    key.extend_from_slice(rhs.as_bytes());
    key.extend_from_slice(lhs.as_bytes());
    Bytes::from(key)
}

#[test]
fn should_emit_record_when_old_and_new_fk_differ() -> Result<()> {
    #[allow(clippy::ptr_arg)]
    fn extractor(value: &String) -> Option<String> {
        let split = value.split('|').nth(1)?;
        // "returnNull": the new foreign key is null.
        (split != "returnNull").then(|| split.to_string())
    }
    for materialized in [true, false] {
        for rejoin in [true, false] {
            let case = Case {
                left_join: true,
                materialized,
                rejoin,
            };
            let topology = topology(case, extractor)?;
            let subscription_store = topology
                .stores()
                .map(|s| s.name().to_string())
                .find(|n| n.contains("SUBSCRIPTION-STATE-STORE"))
                .expect("couldn't find store");
            let f = Fixture {
                case,
                driver: TopologyTestDriver::new(topology)?,
            };
            let store = f
                .driver
                .key_value_store::<Bytes, Bytes>(&subscription_store)?;
            let key = subscription_store_key("lhs1", "rhs1");
            f.left("lhs1", Some("lhsValue1|rhs1"), BASE)?;
            let expected = vals(&[("lhs1", "(lhsValue1|rhs1,null)")]);
            f.check_output(expected.clone())?;
            f.check_store(expected)?;
            assert!(store.get(&key)?.is_some());

            f.left("lhs1", Some("lhsValue1|returnNull"), BASE)?;
            let expected = vals(&[("lhs1", "(lhsValue1|returnNull,null)")]);
            f.check_output(expected.clone())?;
            f.check_store(expected)?;
            assert!(store.get(&key)?.is_none());
        }
    }
    Ok(())
}

/// The unversioned branch of Kafka's shouldIgnoreOutOfOrderRecordsIffVersioned: out-of-order
/// records of unversioned tables produce results like any other.
#[test]
fn out_of_order_records_of_unversioned_tables_produce_results() -> Result<()> {
    for case in cases().into_iter().filter(|c| !c.rejoin) {
        let f = Fixture::new(case)?;
        let left_join = case.left_join;
        f.right("rhs1", Some("rhsValue1"), BASE + 4)?;
        f.check_output(Map::new())?;
        f.check_store(Map::new())?;

        f.left("lhs1", Some("lhsValue1|rhs1"), BASE + 3)?;
        f.left("lhs2", Some("lhsValue2|rhs1"), BASE + 5)?;
        let expected = vals(&[
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2|rhs1,rhsValue1)"),
        ]);
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // Replace with a tombstone, to validate the behavior when the latest record is null.
        f.left("lhs2", None, BASE + 6)?;
        f.check_output(map(&[("lhs2", None)]))?;
        f.check_store(vals(&[("lhs1", "(lhsValue1|rhs1,rhsValue1)")]))?;

        // An out-of-order LHS record (for an existing key) produces a new result.
        f.left("lhs1", Some("lhsValue1_ooo|rhs1"), BASE + 2)?;
        f.left("lhs2", Some("lhsValue2_ooo|rhs1"), BASE + 2)?;
        let expected = vals(&[
            ("lhs1", "(lhsValue1_ooo|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2_ooo|rhs1,rhsValue1)"),
        ]);
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // So does an out-of-order LHS tombstone.
        f.left("lhs1", None, BASE + 2)?;
        f.check_output(map(&[("lhs1", None)]))?;
        f.check_store(vals(&[("lhs2", "(lhsValue2_ooo|rhs1,rhsValue1)")]))?;

        // An LHS record with a larger timestamp always produces a new result.
        f.left("lhs1", Some("lhsValue1_new|rhs1"), BASE + 8)?;
        f.left("lhs2", Some("lhsValue2_new|rhs1"), BASE + 8)?;
        let expected = vals(&[
            ("lhs1", "(lhsValue1_new|rhs1,rhsValue1)"),
            ("lhs2", "(lhsValue2_new|rhs1,rhsValue1)"),
        ]);
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // An out-of-order RHS record produces new results.
        f.right("rhs1", Some("rhsValue1_ooo"), BASE + 1)?;
        let expected = vals(&[
            ("lhs1", "(lhsValue1_new|rhs1,rhsValue1_ooo)"),
            ("lhs2", "(lhsValue2_new|rhs1,rhsValue1_ooo)"),
        ]);
        f.check_output(expected.clone())?;
        f.check_store(expected)?;

        // So does an out-of-order RHS tombstone.
        f.right("rhs1", None, BASE + 1)?;
        if left_join {
            let expected = vals(&[
                ("lhs1", "(lhsValue1_new|rhs1,null)"),
                ("lhs2", "(lhsValue2_new|rhs1,null)"),
            ]);
            f.check_output(expected.clone())?;
            f.check_store(expected)?;
        } else {
            f.check_output(map(&[("lhs1", None), ("lhs2", None)]))?;
            f.check_store(Map::new())?;
        }
    }
    Ok(())
}

// ---- freshet: names, topics, timestamps, staleness ----

/// Names follow `KTableImpl.doJoinOnForeignKey`'s order; the internal topics take the
/// partition counts of the table they are co-partitioned with.
#[test]
fn names_topics_and_copartitioning() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.table::<String, String>("left"); // store 0, source 1, table 2
    let right = builder.table::<String, String>("right"); // store 3, source 4, table 5
    left.join_fk(&right, split_extractor, |a, b| format!("{a}{b}"))
        .to_stream()
        .to("out");
    let topology = builder.build()?;
    let internal: Vec<(String, PartitionCount)> = topology
        .internal_topics()
        .iter()
        .map(|t| (t.name.shown().to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(
        internal,
        vec![
            (
                "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic".to_string(),
                PartitionCount::MaxOf(vec![TopicName::External("right".into())])
            ),
            (
                "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic".to_string(),
                PartitionCount::MaxOf(vec![TopicName::External("left".into())])
            ),
        ]
    );
    let text = topology.describe().to_string();
    for line in [
        "Processor: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000007 (stores: [])",
        "Sink: KTABLE-SINK-0000000008 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)",
        "Source: KTABLE-SOURCE-0000000009 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])",
        "Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000011 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])",
        "Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000012 (stores: [right-STATE-STORE-0000000003])",
        "Processor: KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-0000000013 (stores: [KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010])",
        "Sink: KTABLE-SINK-0000000015 (topic: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic)",
        "Source: KTABLE-SOURCE-0000000016 (topics: [KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic])",
        "Processor: KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-0000000017 (stores: [left-STATE-STORE-0000000000])",
        "Processor: KTABLE-FK-JOIN-OUTPUT-0000000018 (stores: [])",
        "Processor: KTABLE-TOSTREAM-0000000020 (stores: [])",
        "Processor: KTABLE-SOURCE-0000000002 (stores: [left-STATE-STORE-0000000000])",
        "Processor: KTABLE-SOURCE-0000000005 (stores: [right-STATE-STORE-0000000003])",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Index 19 is the burned output store name.
    assert!(!text.contains("KTABLE-FK-JOIN-OUTPUT-STATE-STORE-0000000019"));
    assert_eq!(topology.subtopologies().len(), 2);
    let groups: Vec<Vec<String>> = topology
        .copartition_groups()
        .iter()
        .map(|g| g.iter().map(|t| t.shown().to_string()).collect())
        .collect();
    assert!(groups.contains(&vec![
        "right".to_string(),
        "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic".to_string(),
    ]));
    assert!(groups.contains(&vec![
        "left".to_string(),
        "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000014-topic".to_string(),
    ]));
    let subscription = topology
        .stores()
        .find(|s| s.name() == "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000010")
        .map(|s| (s.logging_enabled(), s.caching_enabled()));
    assert_eq!(subscription, Some((true, false)));
    Ok(())
}

/// Results carry the larger timestamp of the two rows when the left side triggers (Kafka's
/// `SubscriptionJoinProcessorSupplier`), the right row's when the right side does.
#[test]
fn result_timestamps() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.table::<String, String>(LEFT_TABLE);
    let right = builder.table::<String, String>(RIGHT_TABLE);
    left.join_fk(&right, split_extractor, |a, b| format!("({a},{b})"))
        .to_stream()
        .to(OUTPUT);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let l = driver.input::<String, Option<String>>(LEFT_TABLE);
    let r = driver.input::<String, Option<String>>(RIGHT_TABLE);
    r.pipe("rhs1".into(), Some("a".into()), 10)?;
    l.pipe("lhs1".into(), Some("x|rhs1".into()), 5)?; // max(5, 10)
    l.pipe("lhs1".into(), Some("y|rhs1".into()), 20)?; // max(20, 10)
    r.pipe("rhs1".into(), Some("b".into()), 15)?; // the right row's
    let out: Vec<(Option<String>, i64)> = driver
        .output::<String, Option<String>>(OUTPUT)
        .read_records()?
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(
        out,
        vec![
            (Some("(x|rhs1,a)".into()), 10),
            (Some("(y|rhs1,a)".into()), 20),
            (Some("(y|rhs1,b)".into()), 15),
        ]
    );
    Ok(())
}

/// Works across partitions: subscriptions go to the right row's partition, answers back to
/// the left row's.
#[test]
fn joins_across_partitions() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.table::<String, String>(LEFT_TABLE);
    let right = builder.table::<String, String>(RIGHT_TABLE);
    left.left_join_fk(&right, split_extractor, |a, b| format!("({a},{b:?})"))
        .to_stream()
        .to(OUTPUT);
    let config = freshet_streams::testing::DriverConfig {
        partitions: 4,
        ..Default::default()
    };
    let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    let l = driver.input::<String, Option<String>>(LEFT_TABLE);
    let r = driver.input::<String, Option<String>>(RIGHT_TABLE);
    for i in 0..8 {
        r.pipe(format!("rhs{i}"), Some(format!("R{i}")), 0)?;
    }
    for i in 0..8 {
        l.pipe(format!("lhs{i}"), Some(format!("L|rhs{}", 7 - i)), 1)?;
    }
    let out: Map = driver
        .output::<String, Option<String>>(OUTPUT)
        .read_key_values()?
        .into_iter()
        .collect();
    let expected: Map = (0..8)
        .map(|i| {
            (
                format!("lhs{i}"),
                Some(format!("(L|rhs{},Some(\"R{}\"))", 7 - i, 7 - i)),
            )
        })
        .collect();
    assert_eq!(out, expected);
    Ok(())
}

/// Feeds a task by hand, so that internal records can be held back and delivered late.
struct Harness {
    task: Task,
    offsets: BTreeMap<String, i64>,
}

impl Harness {
    fn pipe(
        &mut self,
        topic: &str,
        key: &str,
        value: Option<&str>,
        ts: i64,
    ) -> Result<Vec<SinkRecord>> {
        let record = SinkRecord {
            topic: topic.to_string(),
            partition: Some(0),
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            timestamp: ts,
            headers: Vec::new(),
        };
        self.deliver(record)
    }

    /// Delivers `record` to its topic, processes, returns what the task wrote.
    fn deliver(&mut self, record: SinkRecord) -> Result<Vec<SinkRecord>> {
        let offset = self.offsets.entry(record.topic.clone()).or_insert(0);
        let input = InputRecord {
            key: record.key,
            value: record.value,
            timestamp: record.timestamp,
            headers: record.headers,
            offset: *offset,
        };
        *offset += 1;
        self.task.add_records(&record.topic, [input])?;
        while self.task.process_one()? {}
        self.task.flush()?;
        Ok(self.task.take_outputs())
    }
}

fn only(records: Vec<SinkRecord>, topic_part: &str) -> Vec<SinkRecord> {
    records
        .into_iter()
        .filter(|r| r.topic.contains(topic_part))
        .collect()
}

/// A response that answers an older value of the left row (its hash differs from the
/// current value's) is discarded (Kafka's `ResponseJoinProcessorSupplier`): here the row
/// moved from `rhs1` to `rhs2` before `rhs1`'s answer arrived.
#[test]
fn stale_responses_are_discarded() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.table::<String, String>(LEFT_TABLE);
    let right = builder.table::<String, String>(RIGHT_TABLE);
    left.join_fk(&right, split_extractor, |a, b| format!("({a},{b})"))
        .to_stream()
        .to(OUTPUT);
    let topology = builder.build()?;
    let subs: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
    let env = TaskEnv {
        backend: Arc::new(freshet_state_store::MemoryBackend::new()),
        cache: freshet_state_store::ThreadCache::new(1 << 20),
        config: TaskConfig::new("app"),
        partitions_of: Arc::new(|_| Some(1)),
        wall_clock: 0,
        global_stores: Default::default(),
    };
    let mut h = Harness {
        task: Task::new(&topology, "0_0", &subs, 0, env)?,
        offsets: BTreeMap::new(),
    };
    assert!(h.pipe(RIGHT_TABLE, "rhs1", Some("R1"), 0)?.is_empty());
    let subscriptions = only(
        h.pipe(LEFT_TABLE, "lhs1", Some("v1|rhs1"), 1)?,
        "SUBSCRIPTION-REGISTRATION",
    );
    assert_eq!(subscriptions.len(), 1);
    // The answer to v1, held back.
    let mut stale = Vec::new();
    for s in subscriptions {
        stale.extend(only(h.deliver(s)?, "SUBSCRIPTION-RESPONSE"));
    }
    assert_eq!(stale.len(), 1);
    // The row moves to rhs2 (absent): unsubscribe rhs1, subscribe rhs2.
    let moved = only(
        h.pipe(LEFT_TABLE, "lhs1", Some("v2|rhs2"), 2)?,
        "SUBSCRIPTION-REGISTRATION",
    );
    assert_eq!(moved.len(), 2);
    let dropped_before = h.task.metrics().dropped_records;
    // The stale answer: dropped, nothing joined with rhs1's value.
    for r in stale {
        let out = h.deliver(r)?;
        assert!(only(out, OUTPUT).is_empty());
    }
    assert_eq!(h.task.metrics().dropped_records, dropped_before + 1);
    // The current answers: "no value at rhs2" gives the inner join's tombstone.
    let mut results = Vec::new();
    for s in moved {
        for r in only(h.deliver(s)?, "SUBSCRIPTION-RESPONSE") {
            results.extend(only(h.deliver(r)?, OUTPUT));
        }
    }
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].key.as_deref(), Some(&b"lhs1"[..]));
    assert_eq!(results[0].value, None);
    Ok(())
}
