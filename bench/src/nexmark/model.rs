//! The Nexmark auction model (persons, auctions, bids, with the fields of the Nexmark
//! benchmark as Apache Beam and Flink define them), the query result types, and a compact
//! binary codec for all of them ([`Bin`], a freshet [`Serde`]).
//!
//! Integers are 8 bytes big-endian, strings a 4-byte big-endian length and UTF-8 bytes,
//! vectors a 4-byte count and their items, structs their fields in order, [`Event`] a tag
//! byte (0 person, 1 auction, 2 bid) and the struct.

use std::marker::PhantomData;

use freshet_streams::{Nullable, Serde, StreamsBuilder};

/// Encodes into and decodes from the compact binary layout.
pub trait Codec: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes one value from the front of `input`, advancing it.
    ///
    /// # Errors
    /// Bytes that are too short or not UTF-8 where a string is expected.
    fn decode(input: &mut &[u8]) -> Result<Self, String>;
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(format!("{n} bytes expected, {} left", input.len()));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take8(input: &mut &[u8]) -> Result<[u8; 8], String> {
    let mut a = [0u8; 8];
    a.copy_from_slice(take(input, 8)?);
    Ok(a)
}

fn take_len(input: &mut &[u8]) -> Result<usize, String> {
    let mut a = [0u8; 4];
    a.copy_from_slice(take(input, 4)?);
    Ok(u32::from_be_bytes(a) as usize)
}

impl Codec for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, String> {
        take8(input).map(u64::from_be_bytes)
    }
}

impl Codec for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, String> {
        take8(input).map(i64::from_be_bytes)
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, String> {
        let n = take_len(input)?;
        String::from_utf8(take(input, n)?.to_vec()).map_err(|e| e.to_string())
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        for x in self {
            x.encode(out);
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, String> {
        let n = take_len(input)?;
        // Each item takes at least one byte: a corrupt count cannot allocate much.
        let mut v = Vec::with_capacity(n.min(input.len()));
        for _ in 0..n {
            v.push(T::decode(input)?);
        }
        Ok(v)
    }
}

/// Implements [`Codec`] for a struct, field by field.
macro_rules! struct_codec {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                $( self.$f.encode(out); )*
            }
            fn decode(input: &mut &[u8]) -> Result<Self, String> {
                Ok($t { $( $f: Codec::decode(input)?, )* })
            }
        }
    };
}

/// A person who sells or bids (Nexmark's `Person`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person {
    /// Person id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Email address.
    pub email_address: String,
    /// Credit card number.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// US state.
    pub state: String,
    /// Registration time (ms since the epoch); the record's timestamp.
    pub date_time: i64,
    /// Padding to Nexmark's average person size.
    pub extra: String,
}
struct_codec!(Person {
    id,
    name,
    email_address,
    credit_card,
    city,
    state,
    date_time,
    extra
});

/// An item for sale (Nexmark's `Auction`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Auction {
    /// Auction id.
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Description.
    pub description: String,
    /// Initial bid (cents).
    pub initial_bid: u64,
    /// Reserve price (cents).
    pub reserve: u64,
    /// Opening time (ms since the epoch); the record's timestamp.
    pub date_time: i64,
    /// Closing time (ms since the epoch).
    pub expires: i64,
    /// The selling person's id.
    pub seller: u64,
    /// Category id (10–14).
    pub category: u64,
    /// Padding to Nexmark's average auction size.
    pub extra: String,
}
struct_codec!(Auction {
    id,
    item_name,
    description,
    initial_bid,
    reserve,
    date_time,
    expires,
    seller,
    category,
    extra
});

/// A bid on an auction (Nexmark's `Bid`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// The bidding person's id.
    pub bidder: u64,
    /// Price (cents).
    pub price: u64,
    /// Where the bid came from.
    pub channel: String,
    /// The bid's URL.
    pub url: String,
    /// Bid time (ms since the epoch); the record's timestamp.
    pub date_time: i64,
    /// Padding to Nexmark's average bid size.
    pub extra: String,
}
struct_codec!(Bid {
    auction,
    bidder,
    price,
    channel,
    url,
    date_time,
    extra
});

/// One Nexmark event: the value of every record of the events topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event's time (its record's timestamp).
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The record key the generator writes it with: the person's id, the auction's id,
    /// the bid's auction.
    pub fn key(&self) -> u64 {
        match self {
            Event::Person(p) => p.id,
            Event::Auction(a) => a.id,
            Event::Bid(b) => b.auction,
        }
    }

    /// The person, if it is one.
    pub fn person(&self) -> Option<&Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }

    /// The auction, if it is one.
    pub fn auction(&self) -> Option<&Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    /// The bid, if it is one.
    pub fn bid(&self) -> Option<&Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }
}

impl Codec for Event {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Event::Person(p) => {
                out.push(0);
                p.encode(out);
            }
            Event::Auction(a) => {
                out.push(1);
                a.encode(out);
            }
            Event::Bid(b) => {
                out.push(2);
                b.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, String> {
        let tag = take(input, 1)?[0];
        match tag {
            0 => Person::decode(input).map(Event::Person),
            1 => Auction::decode(input).map(Event::Auction),
            2 => Bid::decode(input).map(Event::Bid),
            t => Err(format!("unknown event tag {t}")),
        }
    }
}

/// q1's result: a bid with its price in euros.
pub type Q1Row = Bid;

/// q2's result: `(auction, price)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AuctionPrice {
    /// Auction id.
    pub auction: u64,
    /// Price.
    pub price: u64,
}
struct_codec!(AuctionPrice { auction, price });

/// q3's result: the seller's name, city and state beside the auction id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Q3Row {
    /// Seller name.
    pub name: String,
    /// Seller city.
    pub city: String,
    /// Seller state.
    pub state: String,
    /// Auction id.
    pub auction: u64,
}
struct_codec!(Q3Row {
    name,
    city,
    state,
    auction
});

/// q4's join result: the auction's category and closing time beside a bid's price and
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuctionBid {
    /// The auction's category.
    pub category: u64,
    /// The auction's closing time.
    pub expires: i64,
    /// The bid's price.
    pub price: u64,
    /// The bid's time.
    pub date_time: i64,
}
struct_codec!(AuctionBid {
    category,
    expires,
    price,
    date_time
});

/// q4's winning bid of an auction: its category and the highest price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CategoryPrice {
    /// Category id.
    pub category: u64,
    /// Highest price.
    pub price: u64,
}
struct_codec!(CategoryPrice { category, price });

/// q4's result per category: the sum and count of winning prices (their average is
/// `sum / count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SumCount {
    /// Sum of winning prices.
    pub sum: i64,
    /// Auctions with a winning bid.
    pub count: i64,
}
struct_codec!(SumCount { sum, count });

/// q5's per-window count of one auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuctionCount {
    /// Auction id.
    pub auction: u64,
    /// Bids in the window.
    pub count: i64,
}
struct_codec!(AuctionCount { auction, count });

/// q5's result per window: the highest bid count and the auctions that have it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HotItems {
    /// The highest count.
    pub count: i64,
    /// Auctions with that count.
    pub auctions: Vec<u64>,
}
struct_codec!(HotItems { count, auctions });

/// q7's result per window: the highest price and the bids that have it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaxBids {
    /// The highest price.
    pub price: u64,
    /// Bids at that price.
    pub bids: Vec<Bid>,
}
struct_codec!(MaxBids { price, bids });

/// q8's join result before the same-window filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonAuction {
    /// Person id.
    pub person: u64,
    /// Person name.
    pub name: String,
    /// When the person registered.
    pub person_time: i64,
    /// When the auction opened.
    pub auction_time: i64,
}
struct_codec!(PersonAuction {
    person,
    name,
    person_time,
    auction_time
});

/// q8's result: a person who registered and opened an auction in the same 10 s window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Q8Row {
    /// Person id.
    pub person: u64,
    /// Person name.
    pub name: String,
    /// The window's start.
    pub start: i64,
}
struct_codec!(Q8Row {
    person,
    name,
    start
});

/// A freshet [`Serde`] over [`Codec`].
pub struct Bin<T>(PhantomData<fn() -> T>);

impl<T> Bin<T> {
    /// The serde of `T`.
    pub fn new() -> Self {
        Bin(PhantomData)
    }
}

impl<T> Default for Bin<T> {
    fn default() -> Self {
        Bin::new()
    }
}

impl<T> Clone for Bin<T> {
    fn clone(&self) -> Self {
        Bin::new()
    }
}

impl<T> std::fmt::Debug for Bin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bin<{}>", std::any::type_name::<T>())
    }
}

impl<T: Codec + 'static> Serde<T> for Bin<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(64);
        value.encode(&mut out);
        Ok(out)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T, String> {
        let mut input = bytes;
        let v = T::decode(&mut input)?;
        if input.is_empty() {
            Ok(v)
        } else {
            Err(format!("{} bytes left after a value", input.len()))
        }
    }
}

/// Decodes a whole value with [`Codec`].
///
/// # Errors
/// As [`Codec::decode`], and bytes left over.
pub fn decode<T: Codec + 'static>(bytes: &[u8]) -> Result<T, String> {
    Bin::<T>::new().deserialize(bytes)
}

/// Encodes a value with [`Codec`].
pub fn encode<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

fn register<T: Codec + Send + 'static>(b: &StreamsBuilder) {
    b.register_serde::<T>(Bin::<T>::new());
    b.register_serde::<Option<T>>(Nullable(Bin::<T>::new()));
}

/// A builder with [`Bin`] registered as the serde of every model and result type (and
/// their `Option`s).
pub fn builder() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    register::<Event>(&b);
    register::<Person>(&b);
    register::<Auction>(&b);
    register::<Bid>(&b);
    register::<AuctionPrice>(&b);
    register::<Q3Row>(&b);
    register::<AuctionBid>(&b);
    register::<CategoryPrice>(&b);
    register::<SumCount>(&b);
    register::<AuctionCount>(&b);
    register::<HotItems>(&b);
    register::<MaxBids>(&b);
    register::<PersonAuction>(&b);
    register::<Q8Row>(&b);
    b
}
