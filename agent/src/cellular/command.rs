//! Runs a modem tool (`mmcli`, `uqmi`, a `command` source) with a deadline: stdout and stderr
//! captured and bounded, the process group killed when the deadline passes, a non-zero exit or a
//! signal reported with the start of stderr. Never waits longer than the timeout.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

/// Most bytes of stdout kept; a tool printing more is cut (and then fails to parse).
pub const MAX_STDOUT: u64 = 256 * 1024;

/// Most bytes of stderr kept for the error message.
const MAX_STDERR: u64 = 4096;

/// Why a command gave no output to parse. Displays as a sentence for `modem_stopped_answering`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {timeout:?} (killed)")]
    Timeout { program: String, timeout: Duration },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("reading the output of {program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

/// Runs `program args…` and returns its stdout (lossy UTF-8).
pub async fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<String, CommandError> {
    let name = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            program: name.clone(),
            source,
        })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let finished = async {
        let (out, err, status) = tokio::join!(
            bounded(stdout, MAX_STDOUT),
            bounded(stderr, MAX_STDERR),
            child.wait()
        );
        (out, err, status)
    };
    let Ok((out, err, status)) = tokio::time::timeout(timeout, finished).await else {
        kill_group(group);
        return Err(CommandError::Timeout {
            program: name,
            timeout,
        });
    };
    let io = |source| CommandError::Io {
        program: name.clone(),
        source,
    };
    let status = status.map_err(io)?;
    let out = out.map_err(io)?;
    let err = err.map_err(io)?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err).trim().to_owned();
        return Err(CommandError::Failed {
            program: name,
            status: status.to_string(),
            stderr: if stderr.is_empty() {
                "no message".into()
            } else {
                stderr
            },
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Everything `reader` gives up to `limit` bytes; the rest is read and dropped so that the
/// writer is not blocked on a full pipe.
async fn bounded<R: AsyncRead + Unpin>(reader: Option<R>, limit: u64) -> std::io::Result<Vec<u8>> {
    let Some(mut reader) = reader else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    (&mut reader).take(limit).read_to_end(&mut kept).await?;
    tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    Ok(kept)
}

/// Kills the whole process group (a shell script and whatever it started).
fn kill_group(group: Option<i32>) {
    if let Some(pid) = group.and_then(rustix::process::Pid::from_raw) {
        // Already gone is fine; kill_on_drop covers the direct child in any case.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh() -> &'static Path {
        Path::new("/bin/sh")
    }

    #[tokio::test]
    async fn output_and_failures() {
        let ok = run(sh(), &["-c", "echo '{\"a\":1}'"], Duration::from_secs(5)).await;
        assert_eq!(ok.unwrap(), "{\"a\":1}\n");
        let failed = run(
            sh(),
            &["-c", "echo nope >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await;
        let text = failed.unwrap_err().to_string();
        assert!(
            text.contains("exit status: 3") && text.ends_with("nope"),
            "{text}"
        );
        let missing = run(Path::new("/nonexistent/mmcli"), &[], Duration::from_secs(5)).await;
        assert!(matches!(missing, Err(CommandError::Spawn { .. })));
    }

    #[tokio::test]
    async fn a_hanging_tool_and_its_children_are_killed_at_the_deadline() {
        let started = std::time::Instant::now();
        let hung = run(
            sh(),
            &["-c", "sleep 30 & sleep 30"],
            Duration::from_millis(300),
        )
        .await;
        assert!(
            matches!(hung, Err(CommandError::Timeout { .. })),
            "{hung:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let big = run(
            sh(),
            &["-c", "head -c 1000000 /dev/zero | tr '\\0' x"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(big.len(), usize::try_from(MAX_STDOUT).unwrap());
    }
}
