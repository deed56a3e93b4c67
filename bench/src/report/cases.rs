//! The outcomes of one run, loaded from its `--json` files and grouped by case then broker, and
//! the order brokers and cases appear in every table and plot.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::outcome::Outcome;

/// Brokers in table order; Stompbox first because every ratio is Stompbox over a peer.
pub(super) const BROKERS: [&str; 3] = ["stompbox", "rabbitmq", "activemq"];
/// Case order in tables; cases not listed follow alphabetically.
const CASE_ORDER: [&str; 11] = [
    "fanout-10k-10",
    "fanout-10k-100",
    "pairs-1k",
    "pairs-big",
    "ack-10q",
    "reconnect-1k",
    "fanout-10k-10-ws",
    "pairs-1k-ws",
    "fanout-1x100",
    "idle-tcp",
    "idle-ws",
];

pub(super) type Cases = BTreeMap<String, BTreeMap<String, Outcome>>;

pub(super) fn load(dir: &Path) -> anyhow::Result<Cases> {
    let mut cases: Cases = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let o: Outcome = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("parse {}", path.display()))?;
        cases
            .entry(o.scenario.clone())
            .or_default()
            .insert(o.broker.clone(), o);
    }
    Ok(cases)
}

pub(super) fn ordered(cases: &Cases) -> Vec<&String> {
    let mut names: Vec<&String> = cases.keys().collect();
    names.sort_by_key(|n| {
        (
            CASE_ORDER.iter().position(|c| c == n).unwrap_or(usize::MAX),
            n.to_string(),
        )
    });
    names
}
