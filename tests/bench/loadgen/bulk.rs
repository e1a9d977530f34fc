//! `--store PATH`: the fast path for big stores. The same simulated fleet, but its events are
//! appended straight to a collector store through the collector's own `Store::append` (one
//! transaction per [`CHUNK`] events, with each touched boot's watermark), as if received 50 ms
//! after they happened. The rounds are laid out back to back over the past, ending now, so the
//! store reads like a fleet's history. Prints what the collector's state must show after it
//! rebuilds from the store.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use netmon_collector::intake::clock::ClockSource;
use netmon_collector::store::{BootRow, NewEvent, Origin, Store};
use netmon_events::{Envelope, ProvinceId};

use crate::Args;
use crate::fleet::{Mix, SimAgent};

/// Events per transaction.
const CHUNK: usize = 20_000;

/// Appends about `args.max_events` events of `args.agents` agents to the store at `path`.
pub fn run(
    path: &Path,
    args: &Args,
    province: &ProvinceId,
    mix: &Mix,
) -> anyhow::Result<serde_json::Value> {
    let (agents, targets, max_events) = (args.agents, args.targets as usize, args.max_events);
    let started = std::time::Instant::now();
    let mut store = Store::open(path).with_context(|| format!("opening {}", path.display()))?;
    let per_round = agents * (targets as u64 + u64::from(mix.heartbeat_every > 0));
    let rounds = max_events.div_ceil(per_round.max(1));
    let interval = TimeDelta::milliseconds(i64::try_from(args.interval_ms.max(1))?);
    let begin = Utc::now() - interval * i32::try_from(rounds + 1)?;
    let mut fleet = (0..agents)
        .map(|i| SimAgent::new(&args.prefix, i, province, targets, begin))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut chunk, mut out) = (Vec::with_capacity(CHUNK + 100), Vec::new());
    // Agents touched by the chunk being built, and when each agent was first received.
    let mut touched: Vec<usize> = Vec::new();
    let mut first: HashMap<usize, DateTime<Utc>> = HashMap::new();
    let mut events = 0u64;
    for round in 0..rounds {
        for i in 0..fleet.len() {
            let phase = interval.num_milliseconds() * i64::try_from(i)? / i64::try_from(agents)?;
            let time = begin + interval * i32::try_from(round)? + TimeDelta::milliseconds(phase);
            out.clear();
            fleet[i].round(time, mix, &mut out);
            let received = time + TimeDelta::milliseconds(50);
            chunk.extend(out.drain(..).map(|envelope: Envelope| NewEvent {
                province: province.clone(),
                received,
                origin: Origin::Agent,
                time: envelope.time,
                clock: ClockSource::Agent,
                late: false,
                envelope,
            }));
            touched.push(i);
            first.entry(i).or_insert(received);
            if chunk.len() >= CHUNK {
                events += flush(
                    &mut store,
                    &mut chunk,
                    &mut touched,
                    &first,
                    &fleet,
                    received,
                )?;
            }
        }
    }
    let now = Utc::now();
    events += flush(&mut store, &mut chunk, &mut touched, &first, &fleet, now)?;
    Ok(serde_json::json!({
        "store": path.display().to_string(),
        "agents": agents,
        "events": events,
        "seq_total": fleet.iter().map(SimAgent::seq).sum::<u64>(),
        "links": agents * targets as u64,
        "links_down": fleet.iter().map(|a| a.links_down(mix)).sum::<u64>(),
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// Appends the chunk with the boot rows of the agents it touched; returns the events stored.
fn flush(
    store: &mut Store,
    chunk: &mut Vec<NewEvent>,
    touched: &mut Vec<usize>,
    first: &HashMap<usize, DateTime<Utc>>,
    fleet: &[SimAgent],
    last: DateTime<Utc>,
) -> anyhow::Result<u64> {
    touched.sort_unstable();
    touched.dedup();
    let boots: Vec<BootRow> = touched
        .iter()
        .map(|&i| BootRow {
            agent: fleet[i].id.clone(),
            boot: fleet[i].boot.clone(),
            watermark: fleet[i].seq(),
            epoch: Some(fleet[i].booted()),
            first_received: first.get(&i).copied().unwrap_or(last),
            last_received: last,
        })
        .collect();
    let stored = store
        .append(chunk, &boots)
        .context("appending to the store")?;
    let new = stored.iter().filter(|e| e.stored().is_some()).count() as u64;
    chunk.clear();
    touched.clear();
    Ok(new)
}
