//! A deterministic Nexmark event generator, after the model of Apache Beam's (and Flink's)
//! Nexmark `GeneratorConfig` with its default settings: of every 50 events, 1 is a new
//! person, 3 are new auctions and 46 are bids; sellers and bidders are recent persons (a
//! quarter of them drawn from the 1000 most recent, the rest "hot": a few ids that change
//! slowly), bids go to recent auctions (half to a hot one), auctions close within about
//! twice the time it takes to open 100 more, prices are `100 · 10^(6·u)` cents for a
//! uniform `u`, and an `extra` field pads each event to Nexmark's average sizes (person
//! 200 bytes, auction 500, bid 100).
//!
//! Event `n` is a pure function of `n` ([`event`]): its random choices come from a
//! splitmix64 stream seeded with `n`, and its time is `T0 + n / 10` ms (10,000 events per
//! second of event time, Beam's default first event rate), so the oracles regenerate the
//! events instead of keeping them.

use freshet_log::{partition_for_key, Acks, Log, RecordRef, TopicConfig};

use super::model::{Auction, Bid, Codec, Event, Person};
use crate::BoxError;

/// The events topic.
pub const EVENTS_TOPIC: &str = "nexmark";
/// Its partitions.
pub const PARTITIONS: u32 = 4;
/// Time of event 0 (ms since the epoch), a multiple of 10 s.
pub const T0: i64 = 1_700_000_000_000;
/// Events per millisecond of event time.
pub const EVENTS_PER_MS: u64 = 10;

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const PROPORTION_DENOMINATOR: u64 = 50;
/// The first person id.
pub const FIRST_PERSON_ID: u64 = 1000;
/// The first auction id.
pub const FIRST_AUCTION_ID: u64 = 1000;
/// The first category id (categories are 10–14).
pub const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
/// Events it takes to open [`NUM_IN_FLIGHT_AUCTIONS`] auctions.
const EVENTS_FOR_AUCTIONS: u64 =
    NUM_IN_FLIGHT_AUCTIONS * PROPORTION_DENOMINATOR / AUCTION_PROPORTION;
/// The longest an auction stays open, in ms: auctions last `1 + rand(2 · horizon)` ms where
/// the horizon is the time the events of the in-flight auctions take (`EVENTS_FOR_AUCTIONS`).
pub const MAX_AUCTION_MS: i64 = 2 * (EVENTS_FOR_AUCTIONS / EVENTS_PER_MS + 1) as i64;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// splitmix64: a small, fast, deterministic random stream.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6E65_786D_6172_6B21)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// `len` random lowercase letters.
    fn string(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }

    /// Padding that brings an event of `current` bytes to `average` on average.
    fn extra(&mut self, current: usize, average: usize) -> String {
        if current >= average {
            return String::new();
        }
        let want = average - current;
        let delta = want / 5;
        let len = want - delta + self.below(2 * delta as u64 + 1) as usize;
        self.string(len)
    }

    /// Nexmark's price distribution: `100 · 10^(6u)` cents.
    fn price(&mut self) -> u64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as u64
    }
}

/// Event `n`'s time.
pub fn timestamp(n: u64) -> i64 {
    T0 + (n / EVENTS_PER_MS) as i64
}

/// The id (from 0) of the last person created at or before event `n`.
fn last_person(n: u64) -> u64 {
    n / PROPORTION_DENOMINATOR
}

/// The id (from 0) of the last auction created at or before event `n`.
fn last_auction(n: u64) -> u64 {
    let epoch = n / PROPORTION_DENOMINATOR;
    let offset = n % PROPORTION_DENOMINATOR;
    if offset < PERSON_PROPORTION {
        // This epoch's auctions are still to come: the previous epoch's last.
        (epoch * AUCTION_PROPORTION).saturating_sub(1)
    } else if offset < PERSON_PROPORTION + AUCTION_PROPORTION {
        epoch * AUCTION_PROPORTION + offset - PERSON_PROPORTION
    } else {
        epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    }
}

/// A recent person (from 0), possibly one a few ids ahead of the last created.
fn next_person(n: u64, rng: &mut Rng) -> u64 {
    let people = last_person(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A recent auction (from 0), possibly one a few ids ahead of the last created.
fn next_auction(n: u64, rng: &mut Rng) -> u64 {
    let max = last_auction(n);
    let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

fn person(n: u64, rng: &mut Rng) -> Person {
    let name = format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
    let email_address = format!("{}@{}.com", rng.string(7), rng.string(5));
    let credit_card = (0..4)
        .map(|_| format!("{:04}", rng.below(10_000)))
        .collect::<Vec<_>>()
        .join(" ");
    let city = rng.pick(&US_CITIES).to_string();
    let state = rng.pick(&US_STATES).to_string();
    let size =
        8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len() + 8;
    let extra = rng.extra(size, AVG_PERSON_BYTES);
    Person {
        id: last_person(n) + FIRST_PERSON_ID,
        name,
        email_address,
        credit_card,
        city,
        state,
        date_time: timestamp(n),
        extra,
    }
}

fn auction(n: u64, rng: &mut Rng) -> Auction {
    let seller = if rng.below(HOT_SELLER_RATIO) > 0 {
        last_person(n) / HOT_SELLER_RATIO * HOT_SELLER_RATIO
    } else {
        next_person(n, rng)
    } + FIRST_PERSON_ID;
    let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
    let initial_bid = rng.price();
    let date_time = timestamp(n);
    let horizon = (timestamp(n + EVENTS_FOR_AUCTIONS) - date_time).max(0) as u64;
    let expires = date_time + 1 + rng.below((2 * horizon).max(1)) as i64;
    let item_name = rng.string(20);
    let description = rng.string(100);
    let reserve = initial_bid + rng.price();
    let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8 + 8;
    let extra = rng.extra(size, AVG_AUCTION_BYTES);
    Auction {
        id: last_auction(n) + FIRST_AUCTION_ID,
        item_name,
        description,
        initial_bid,
        reserve,
        date_time,
        expires,
        seller,
        category,
        extra,
    }
}

fn bid(n: u64, rng: &mut Rng) -> Bid {
    let auction = if rng.below(HOT_AUCTION_RATIO) > 0 {
        last_auction(n) / HOT_AUCTION_RATIO * HOT_AUCTION_RATIO
    } else {
        next_auction(n, rng)
    } + FIRST_AUCTION_ID;
    let bidder = if rng.below(HOT_BIDDER_RATIO) > 0 {
        last_person(n) / HOT_BIDDER_RATIO * HOT_BIDDER_RATIO + 1
    } else {
        next_person(n, rng)
    } + FIRST_PERSON_ID;
    let price = rng.price();
    let channel = rng.pick(&CHANNELS).to_string();
    let url = format!(
        "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
        rng.string(5),
        rng.string(5),
        rng.string(5)
    );
    let size = 8 + 8 + 8 + channel.len() + url.len() + 8;
    let extra = rng.extra(size, AVG_BID_BYTES);
    Bid {
        auction,
        bidder,
        price,
        channel,
        url,
        date_time: timestamp(n),
        extra,
    }
}

/// Event `n` of the stream.
pub fn event(n: u64) -> Event {
    let mut rng = Rng::new(n);
    let offset = n % PROPORTION_DENOMINATOR;
    if offset < PERSON_PROPORTION {
        Event::Person(person(n, &mut rng))
    } else if offset < PERSON_PROPORTION + AUCTION_PROPORTION {
        Event::Auction(auction(n, &mut rng))
    } else {
        Event::Bid(bid(n, &mut rng))
    }
}

/// One partition's batch being loaded: encoded values back to back, and per record its
/// key, where its value ends and its timestamp.
type PartitionBatch = (Vec<u8>, Vec<([u8; 8], usize, i64)>);

/// Records per partition in one append while loading.
const LOAD_BATCH: usize = 8192;

/// Creates [`EVENTS_TOPIC`] in `log` and appends events `0..events` to it: key the
/// event's [`Event::key`] (big-endian `u64`, Kafka's default partitioner), value the
/// event's [`Codec`] encoding, timestamp its time.
///
/// # Errors
/// The log's.
pub fn preload(log: &Log, events: u64) -> Result<(), BoxError> {
    log.create_topic(EVENTS_TOPIC, TopicConfig::partitions(PARTITIONS))?;
    // Per partition: encoded values back to back, and (key, value end, timestamp).
    let mut parts: Vec<PartitionBatch> =
        (0..PARTITIONS).map(|_| (Vec::new(), Vec::new())).collect();
    let append = |p: u32, (bytes, recs): &mut PartitionBatch| {
        let mut start = 0;
        let refs: Vec<RecordRef<'_>> = recs
            .iter()
            .map(|(key, end, ts)| {
                let r = RecordRef::new(key, &bytes[start..*end]).with_timestamp(*ts);
                start = *end;
                r
            })
            .collect();
        let res = log.append_refs(EVENTS_TOPIC, p, &refs, Acks::Written);
        bytes.clear();
        recs.clear();
        res.map(|_| ())
    };
    for n in 0..events {
        let e = event(n);
        let key = e.key().to_be_bytes();
        let p = partition_for_key(&key, PARTITIONS);
        let part = &mut parts[p as usize];
        e.encode(&mut part.0);
        part.1.push((key, part.0.len(), e.date_time()));
        if part.1.len() == LOAD_BATCH {
            append(p, part)?;
        }
    }
    for (p, part) in parts.iter_mut().enumerate() {
        if !part.1.is_empty() {
            append(p as u32, part)?;
        }
    }
    Ok(())
}
