//! The Nexmark queries, each run through `StreamsApp` on a small generated input and
//! checked against its plain-Rust oracle (the check is part of `nexmark::run`), plus the
//! generator's proportions and the oracles' power to reject a wrong answer.

use freshet_bench::nexmark::model::{encode, Bid, Event};
use freshet_bench::nexmark::{self, event, Query};
use freshet_bench::workload::Setup;
use freshet_bench::BoxError;
use freshet_log::StoredRecord;
use freshet_runtime::ProcessingGuarantee;

const EVENTS: u64 = 12_000;

fn run(q: Query) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let setup = Setup {
        guarantee: ProcessingGuarantee::ExactlyOnceV2,
        threads: 1,
    };
    let m = nexmark::run(q, EVENTS, setup, dir.path())?;
    assert!(m.records_in >= EVENTS, "{}: {m:?}", q.name());
    Ok(())
}

#[test]
fn q0_pass_through_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q0)
}

#[test]
fn q1_currency_conversion_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q1)
}

#[test]
fn q2_selection_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q2)
}

#[test]
fn q3_local_item_suggestion_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q3)
}

#[test]
fn q4_average_price_per_category_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q4)
}

#[test]
fn q5_hot_items_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q5)
}

#[test]
fn q7_highest_bid_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q7)
}

#[test]
fn q8_monitor_new_users_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q8)
}

#[test]
fn q11_user_sessions_matches_its_oracle() -> Result<(), BoxError> {
    run(Query::Q11)
}

#[test]
fn two_threads_at_least_once_give_the_same_answers() -> Result<(), BoxError> {
    let setup = Setup {
        guarantee: ProcessingGuarantee::AtLeastOnce,
        threads: 2,
    };
    for q in [Query::Q4, Query::Q8, Query::Q11] {
        let dir = tempfile::tempdir()?;
        nexmark::run(q, EVENTS, setup, dir.path())?;
    }
    Ok(())
}

#[test]
fn the_generator_keeps_nexmarks_proportions_and_order() {
    let (mut persons, mut auctions, mut bids) = (0, 0, 0);
    let mut last = i64::MIN;
    for n in 0..5_000 {
        let e = event(n);
        assert!(e.date_time() >= last, "times never go back");
        last = e.date_time();
        match e {
            Event::Person(_) => persons += 1,
            Event::Auction(a) => {
                auctions += 1;
                assert!(a.expires > a.date_time && (10..15).contains(&a.category));
                assert!(a.reserve >= a.initial_bid);
            }
            Event::Bid(_) => bids += 1,
        }
    }
    assert_eq!((persons, auctions, bids), (100, 300, 4_600));
    assert_eq!(event(77), event(77), "deterministic");
}

fn bid_record(offset: i64, b: &Bid) -> StoredRecord {
    StoredRecord {
        offset,
        timestamp: b.date_time,
        key: Some(b.auction.to_be_bytes().to_vec().into()),
        value: Some(encode(b).into()),
        headers: Vec::new(),
    }
}

#[test]
fn the_oracles_reject_a_wrong_answer() {
    let bids: Vec<Bid> = (0..2_000).filter_map(|n| event(n).bid().cloned()).collect();
    let out: Vec<StoredRecord> = bids
        .iter()
        .enumerate()
        .map(|(i, b)| bid_record(i as i64, b))
        .collect();
    assert!(Query::Q0.check(2_000, &out).is_ok());
    // One bid missing, one changed, one extra.
    assert!(Query::Q0.check(2_000, &out[1..]).is_err());
    let mut changed = out.clone();
    let mut b = bids[5].clone();
    b.price += 1;
    changed[5] = bid_record(5, &b);
    assert!(Query::Q0.check(2_000, &changed).is_err());
    let mut extra = out.clone();
    extra.push(bid_record(9_999, &bids[0]));
    assert!(Query::Q0.check(2_000, &extra).is_err());
    // q1 expects converted prices: the unconverted bids are wrong.
    assert!(Query::Q1.check(2_000, &out).is_err());
    // Nothing at all is wrong for every other query on this input.
    for q in [
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q11,
    ] {
        assert!(
            q.check(2_000, &[]).is_err(),
            "{} accepted no output",
            q.name()
        );
    }
}
