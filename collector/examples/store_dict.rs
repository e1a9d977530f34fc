//! Trains the zstd dictionary of the store's row bodies (`collector/src/store/dict/`, ADR 15).
//! A dictionary, once shipped, is never changed: rows name the one they were compressed with.
//! A new one is trained into the next file (`v2.dict`) and added beside the old in
//! `store/body.rs`.
//!
//! The samples are bodies exactly as the store writes them (`store::body::fields`): every golden
//! fixture of `events/fixtures/` with its numbers scaled by random factors (only the variants that
//! validate), and report windows and probe rounds shaped like an agent's (RTTs rounded to
//! 0.01 ms and 0.001 ms). The store benchmark (`store_bench`) measures on events of its own, not
//! these.
//!
//! ```text
//! cargo run -p netmon-collector --example store_dict -- collector/src/store/dict/v1.dict 4096
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use netmon_collector::store::body;
use netmon_events::{Envelope, Event};
use serde_json::Value;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// The body the store writes for `event`.
fn sample(event: &Event) -> Vec<u8> {
    let json = serde_json::to_vec(event).unwrap();
    let target = event.target().map(|t| serde_json::to_vec(t).unwrap());
    body::fields(&json, event.type_name(), target.as_deref())
        .expect("the shape the store expects")
        .to_vec()
}

/// Every number of an event's own fields times one factor; integers stay integers.
fn scaled(value: &Value, factor: f64, digits: i32) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), scaled(v, factor, digits)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| scaled(v, factor, digits)).collect())
        }
        Value::Number(n) if n.is_u64() => {
            Value::from((n.as_u64().unwrap() as f64 * factor).round() as u64)
        }
        Value::Number(n) => {
            let scale = 10f64.powi(digits);
            let x = (n.as_f64().unwrap() * factor * scale).round() / scale;
            serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
        }
        other => other.clone(),
    }
}

fn fixtures(rng: &mut Rng, out: &mut Vec<Vec<u8>>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let envelope: Envelope = serde_json::from_value(fixture.clone()).unwrap();
        out.push(sample(&envelope.event));
        let mut event = fixture.clone();
        for _ in 0..40 {
            let factor = 0.2 + 3.0 * rng.unit();
            let digits = 1 + (rng.next() % 3) as i32;
            if let (Some(map), Some(from)) = (event.as_object_mut(), fixture.as_object()) {
                for (key, value) in from {
                    if !["v", "agent", "boot", "seq", "time", "mono_ms", "type"]
                        .contains(&key.as_str())
                    {
                        map.insert(key.clone(), scaled(value, factor, digits));
                    }
                }
            }
            if let Ok(envelope) = serde_json::from_value::<Envelope>(event.clone())
                && envelope.validate().is_ok()
            {
                out.push(sample(&envelope.event));
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn measurements(rng: &mut Rng, out: &mut Vec<Vec<u8>>) {
    let target = netmon_events::testing::target("x", "10.0.0.1");
    for _ in 0..3000 {
        // A window as tests/bench/loadgen draws them: a base RTT, percentiles spread above it.
        let base = 0.4 + 90.0 * rng.unit() * rng.unit();
        let lost = if rng.next().is_multiple_of(3) {
            (rng.next() % 6) as u32
        } else {
            0
        };
        let failed = if rng.next().is_multiple_of(40) {
            (rng.next() % 12) as u32
        } else {
            0
        };
        let rounds = 60;
        let sent = rounds * 3;
        let received = sent - failed * 3 - lost.min(sent - failed * 3);
        let mut pct: Vec<f64> = (0..9)
            .map(|k| round2(base * (0.85 + 0.05 * f64::from(k) + 0.05 * rng.unit())))
            .collect();
        pct.sort_by(f64::total_cmp);
        let window = Event::ProbeWindowCompleted {
            target: target.clone(),
            window_ms: 60_000,
            rounds,
            failed_rounds: failed,
            longest_failed_run: failed.min(1 + (rng.next() % 5) as u32).min(failed),
            down_ms: u64::from(failed.saturating_sub(2)) * 1000,
            sent,
            received,
            loss_pct: round2(f64::from(sent - received) * 100.0 / f64::from(sent)),
            rtt_min_ms: Some(round2(base * 0.7).min(pct[0])),
            rtt_avg_ms: Some(round2(base)),
            rtt_max_ms: Some(round2(base * (1.3 + 2.0 * rng.unit())).max(pct[8])),
            rtt_mdev_ms: Some(round2(base * 0.2 * rng.unit())),
            rtt_pct_ms: Some(pct),
        };
        out.push(sample(&window));
        let avg = (base * (0.8 + 0.4 * rng.unit()) * 1000.0).round() / 1000.0;
        let round = Event::ProbeRoundCompleted {
            target: target.clone(),
            sent: 3,
            received: 3,
            rtt_min_ms: Some((avg * 900.0).round() / 1000.0),
            rtt_avg_ms: Some(avg),
            rtt_max_ms: Some((avg * 1200.0).round() / 1000.0),
            rtt_mdev_ms: Some((avg * 60.0).round() / 1000.0),
            loss_pct: 0.0,
        };
        out.push(sample(&round));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("OUT_FILE [SIZE]");
    let size: usize = args
        .next()
        .map_or(4096, |s| s.parse().expect("SIZE in bytes"));
    let mut rng = Rng(0xD1C7_0000_0000_0001);
    let mut samples = Vec::new();
    fixtures(&mut rng, &mut samples);
    measurements(&mut rng, &mut samples);
    let dictionary = zstd::dict::from_samples(&samples, size).expect("training");
    std::fs::write(&out, &dictionary).unwrap();
    println!(
        "{} samples, {} bytes of bodies: {} bytes of dictionary in {out}",
        samples.len(),
        samples.iter().map(Vec::len).sum::<usize>(),
        dictionary.len()
    );
}
