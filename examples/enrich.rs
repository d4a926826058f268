//! Enrich a stream from a table: each order gets the customer's current name and tier.
//!
//! `customers` is a table topic (key: customer id, JSON value `{"name","tier"}`; the latest
//! record per key is the customer's current state, a null value deletes it); `purchases`
//! is a stream keyed by the same customer id, JSON values `{"product","quantity"}`. A
//! stream-table left join (`left_join_table`) looks each purchase's customer up as of the
//! purchase — customer updates emit nothing themselves — and writes `enriched-purchases`
//! (key: customer id, JSON value with the customer's name and tier, or `null` for a
//! customer the table does not know). The two topics must have the same partition count
//! (co-partitioned), so that a customer and their purchases meet in one task.
//!
//! ```sh
//! cargo run --release --example enrich -- --exit-when-caught-up
//! ```

mod common;

use std::sync::Arc;

use common::{ensure_topic, is_empty, now_ms, produce, Options};
use freshet::prelude::*;
use serde::{Deserialize, Serialize};

pub(crate) const APP: &str = "enrich";
const CUSTOMERS: &str = "customers";
const PURCHASES: &str = "purchases";
const ENRICHED: &str = "enriched-purchases";

/// A customer, as JSON on `customers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Customer {
    pub(crate) name: String,
    pub(crate) tier: String,
}

/// A purchase, as JSON on `purchases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Purchase {
    pub(crate) product: String,
    pub(crate) quantity: u32,
}

/// A purchase with its customer, as JSON on `enriched-purchases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnrichedPurchase {
    pub(crate) product: String,
    pub(crate) quantity: u32,
    pub(crate) customer: Option<Customer>,
}

/// Purchases joined with the customers table.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder.register_serde::<Customer>(Json::default());
    builder.register_serde::<Purchase>(Json::default());
    builder.register_serde::<EnrichedPurchase>(Json::default());
    let customers = builder.table_with::<String, Customer>(
        CUSTOMERS,
        Consumed::default(),
        Materialized::named("customers-by-id"),
    );
    builder
        .stream::<String, Purchase>(PURCHASES)
        .left_join_table(&customers, |purchase, customer| EnrichedPurchase {
            product: purchase.product.clone(),
            quantity: purchase.quantity,
            customer: customer.cloned(),
        })
        .to(ENRICHED);
    Ok(builder.build()?)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Demo input from `at` on: three customers, purchases, a tier upgrade in between and a
/// purchase by a customer the table does not know.
pub(crate) fn demo_input(at: i64) -> (Vec<Record>, Vec<Record>) {
    let customer = |id: &str, name: &str, tier: &str, t: i64| {
        let c = Customer {
            name: name.into(),
            tier: tier.into(),
        };
        Record::new(id.to_string(), json(&c)).with_timestamp(at + t)
    };
    let purchase = |id: &str, product: &str, quantity: u32, t: i64| {
        let p = Purchase {
            product: product.into(),
            quantity,
        };
        Record::new(id.to_string(), json(&p)).with_timestamp(at + t)
    };
    let customers = vec![
        customer("c-1", "Ann Lee", "silver", 0),
        customer("c-2", "Bob Roy", "bronze", 0),
        customer("c-3", "Cy Diaz", "gold", 0),
        customer("c-1", "Ann Lee", "gold", 3_000), // Ann is upgraded
    ];
    let purchases = vec![
        purchase("c-1", "tea", 2, 1_000),
        purchase("c-2", "coffee", 1, 1_500),
        purchase("c-3", "cocoa", 4, 2_000),
        purchase("c-9", "mate", 1, 2_500), // nobody knows c-9
        purchase("c-1", "chai", 3, 4_000), // after the upgrade
    ];
    (customers, purchases)
}

/// Runs the enrichment on `log`; returns how many demo records it wrote.
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    exit_when_caught_up: bool,
) -> freshet::Result<usize> {
    ensure_topic(&log, CUSTOMERS, 4)?;
    ensure_topic(&log, PURCHASES, 4)?;
    let mut produced = 0;
    if is_empty(&log, PURCHASES)? && is_empty(&log, CUSTOMERS)? {
        let (customers, purchases) = demo_input(now_ms());
        produced += produce(&log, CUSTOMERS, customers)?;
        produced += produce(&log, PURCHASES, purchases)?;
        println!("wrote {produced} demo records to '{CUSTOMERS}' and '{PURCHASES}'");
    }
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    common::run_app(&mut app, exit_when_caught_up).await?;

    let records = common::read_topic(&log, ENRICHED)?;
    println!("\n{} enriched purchases in '{ENRICHED}':", records.len());
    common::print_lines(
        records
            .iter()
            .map(|r| format!("{:<6} {}", common::key_text(r), common::value_text(r))),
        20,
    );
    Ok(produced)
}

#[allow(dead_code)] // unused when a test includes this file as a module
#[tokio::main]
async fn main() -> common::MainResult {
    common::init_logging();
    let options = Options::parse(std::env::args().skip(1), USAGE);
    let log = Arc::new(Log::open(&options.data_dir)?);
    run(
        log,
        options.streams_config(APP)?,
        options.exit_when_caught_up,
    )
    .await?;
    common::print_cli_hints(&options, &[format!("consume {ENRICHED}")]);
    Ok(())
}

const USAGE: &str = "usage: enrich [--data-dir DIR] [--exit-when-caught-up] [--config KEY=VALUE]...

joins 'purchases' with the table 'customers' (both keyed by customer id, JSON values)
into 'enriched-purchases'";
