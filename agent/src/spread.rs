//! Several polling loops of one kind (SNMP devices, cellular modems) run side by side, their
//! first rounds spread evenly over the first interval so that they do not all fire at once.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;

/// Starts `start(item, offset)` for every item, item `i` of `n` offset by `interval(item) × i/n`,
/// and waits until every loop has ended.
pub async fn run_spread<T, F, Fut>(items: Vec<T>, interval: impl Fn(&T) -> Duration, mut start: F)
where
    F: FnMut(T, Duration) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX).max(1);
    let mut loops = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let offset = interval(&item) / count * u32::try_from(i).unwrap_or(0);
        loops.spawn(start(item, offset));
    }
    while loops.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn offsets_are_spread_over_the_interval() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        run_spread(
            vec![10u64, 20, 30, 40],
            |_| Duration::from_secs(4),
            |item, offset| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((item, offset));
                }
            },
        )
        .await;
        drop(tx);
        let mut got = Vec::new();
        while let Some(x) = rx.recv().await {
            got.push(x);
        }
        got.sort();
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            got,
            vec![(10, secs(0)), (20, secs(1)), (30, secs(2)), (40, secs(3))]
        );
    }
}
