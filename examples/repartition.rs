//! Re-key a topic by a field of its values, then count per new key.
//!
//! `orders` is keyed by order id, with JSON values `{"customer","product","quantity"}`. To
//! count orders per product, the stream takes the product as its key and goes through a
//! repartition topic with a partition count of its own,
//! `repartition-orders-by-product-repartition` (2 partitions), so that all orders of a
//! product reach one task; the counts go to `orders-per-product` (key: product, value: the
//! count as a big-endian i64).
//!
//! ```sh
//! cargo run --release --example repartition -- --exit-when-caught-up
//! # your own orders, written before the example starts:
//! cargo run -p freshet-cli -- topics create orders --partitions 4
//! printf 'o-1\t{"customer":"ann","product":"tea","quantity":2}\n' \
//!   | cargo run -p freshet-cli -- produce orders
//! ```
//!
//! Without `repartition_with`, `group_by(|_, order| order.product.clone())` alone would
//! insert a repartition topic with the partition count of `orders`.

mod common;

use std::sync::Arc;

use common::{ensure_topic, is_empty, now_ms, produce, Options, Rng};
use freshet::prelude::*;
use serde::{Deserialize, Serialize};

pub(crate) const APP: &str = "repartition";
const ORDERS: &str = "orders";
const COUNTS: &str = "orders-per-product";

/// An order, as JSON on `orders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) customer: String,
    pub(crate) product: String,
    pub(crate) quantity: u32,
}

/// Orders re-keyed by product and counted.
pub(crate) fn topology() -> freshet::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder.register_serde::<Order>(Json::default());
    builder
        .stream::<String, Order>(ORDERS)
        .select_key(|_order_id, order| order.product.clone())
        .repartition_with(Repartitioned::named("orders-by-product").with_number_of_partitions(2))
        .group_by_key()
        .count_with(Materialized::named("orders-per-product"))
        .to_stream()
        .to(COUNTS);
    Ok(builder.build()?)
}

/// `n` orders of a handful of products by a few customers.
pub(crate) fn demo_orders(n: usize, at: i64) -> Vec<Record> {
    let customers = ["ann", "bob", "cy", "dee", "eve"];
    let products = ["tea", "coffee", "cocoa", "mate", "chai", "rooibos"];
    let mut rng = Rng::new(11);
    (0..n)
        .map(|i| {
            let order = Order {
                customer: rng.skewed(&customers).to_string(),
                product: rng.skewed(&products).to_string(),
                quantity: 1 + rng.below(3) as u32,
            };
            let json = serde_json::to_string(&order).unwrap_or_default();
            Record::new(format!("o-{}", 1000 + i), json).with_timestamp(at + i as i64)
        })
        .collect()
}

/// Runs the re-keyed count on `log`; returns how many demo orders it wrote.
pub(crate) async fn run(
    log: Arc<Log>,
    config: StreamsConfig,
    exit_when_caught_up: bool,
) -> freshet::Result<usize> {
    ensure_topic(&log, ORDERS, 4)?;
    let mut produced = 0;
    if is_empty(&log, ORDERS)? {
        produced = produce(&log, ORDERS, demo_orders(500, now_ms()))?;
        println!("wrote {produced} demo orders to '{ORDERS}'");
    }
    let mut app = StreamsApp::start(config, topology()?, log.clone()).await?;
    common::run_app(&mut app, exit_when_caught_up).await?;

    let counts = common::latest(&common::read_topic(&log, COUNTS)?, common::value_i64);
    println!("\norders per product in '{COUNTS}' (latest count of each):");
    common::print_lines(
        counts
            .iter()
            .map(|(p, n)| format!("{p:<10} {}", n.unwrap_or(0))),
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
    common::print_cli_hints(
        &options,
        &[
            format!("topics describe {APP}-orders-by-product-repartition"),
            format!("consume {COUNTS} --value-format i64"),
        ],
    );
    Ok(())
}

const USAGE: &str =
    "usage: repartition [--data-dir DIR] [--exit-when-caught-up] [--config KEY=VALUE]...

re-keys 'orders' (JSON values) by product through a 2-partition repartition topic and
counts orders per product into 'orders-per-product'";
