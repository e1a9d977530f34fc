//! Waiting for an observable condition with a deadline. Tests poll what they can see (the store,
//! an HTTP answer, a journal, a process's exit) instead of sleeping for a guessed time.
//!
//! One set of rules for blocking tests ([`wait_for`], [`poll_until`]) and async ones
//! ([`wait_for_async`], [`poll_until_async`]): poll every [`POLL`], call the check at least once
//! and once more at the deadline, name what was awaited when it times out.
//!
//! When a test asserts that nothing more happens, it first awaits the event that proves the
//! system got there, then watches for a named [`quiet`] window: the window bounds what the test
//! can see, it synchronises nothing.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `check` every 100 ms until it returns `Some`, and returns that value. Panics, naming
/// `what`, if `timeout` passes first. `check` is always called at least once, and once more
/// right at the deadline.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    match poll_until(timeout, &mut check) {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_for`] but returns `None` on timeout instead of panicking.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Async [`wait_for`]: polls `check` every 100 ms (with `tokio::time::sleep`) until it returns
/// `Some`, and returns that value. Panics, naming `what`, if `timeout` passes first.
pub async fn wait_for_async<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until_async(timeout, check).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_for_async`] but returns `None` on timeout instead of panicking.
pub async fn poll_until_async<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// Watches `check` for the whole of `window` (a named quiet window, after the awaited event) and
/// returns the first value it gives, or `None` if nothing happened. Use it where a test asserts
/// that nothing more arrives: the awaited event synchronises, the window only bounds how long
/// the test looks.
pub fn quiet<T>(window: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    poll_until(window, check)
}

/// Polls `url` with curl until it answers HTTP `status`, failing early if `proc` exits. Errors
/// name `what` and the process's log file.
pub fn wait_http(
    proc: &mut crate::Proc,
    url: &str,
    status: &str,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut failure = None;
    let ready = poll_until(timeout, || {
        if let Err(e) = proc.assert_running() {
            failure = Some(e);
            return Some(false);
        }
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "2",
                "-w",
                "%{http_code}",
            ])
            .arg(url)
            .output()
            .ok()?;
        (output.stdout == status.as_bytes()).then_some(true)
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if ready != Some(true) {
        anyhow::bail!(
            "{what} did not answer {url} with {status} within {timeout:?}; log {}",
            proc.log_path().display()
        );
    }
    Ok(())
}
