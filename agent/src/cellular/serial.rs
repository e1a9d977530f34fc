//! The serial AT session: opens the modem's tty (non-blocking, raw mode, 8N1, the configured
//! baud, modem control lines ignored), asks each command in turn and reads until its final
//! result code (`OK`, `ERROR`, `+CME ERROR: …`, `+CMS ERROR: …`) with a deadline per command.
//!
//! - input waiting before a command (unsolicited result codes, late answers of an earlier
//!   session) is discarded; while a command runs, only lines starting with its answer's prefix
//!   (`+CESQ` for `AT+CESQ`) are kept, so URCs arriving in between (`RING`, `+CEREG: 1`,
//!   `+QIURC: …`) do not reach the parser;
//! - a line longer than [`MAX_LINE`] or an answer longer than [`MAX_ANSWER`] is garbage and
//!   ends the session with an error, as does a deadline passing (a hung modem);
//! - the port is opened for each reading and closed after it, so a modem that re-enumerates
//!   after a reset is found again.
//!
//! Nothing here blocks a thread: reads and writes go through tokio's [`AsyncFd`].

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, ControlModes, OptionalActions, QueueSelector};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Longest line accepted from a modem.
pub const MAX_LINE: usize = 1024;

/// Most bytes accepted in answer to one command.
pub const MAX_ANSWER: usize = 16 * 1024;

/// One command of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCommand {
    /// As sent, without the final `\r`: `AT+CESQ`.
    pub text: &'static str,
    /// The prefix of its information lines: `+CESQ`.
    pub answer: &'static str,
    /// An `ERROR` to a required command fails the reading; to another one it only means the
    /// modem does not know it (an LTE-only modem and `+C5GREG?`).
    pub required: bool,
}

/// Why an AT session gave no transcript.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("cannot open {port}: {source}")]
    Open { port: String, source: io::Error },
    #[error("cannot set up {port} (not a serial port?): {source}")]
    Setup { port: String, source: io::Error },
    #[error("{port}: no final answer to {command} within {timeout:?}")]
    Timeout {
        port: String,
        command: &'static str,
        timeout: Duration,
    },
    #[error("{port}: {command} answered {answer}")]
    Refused {
        port: String,
        command: &'static str,
        answer: String,
    },
    #[error("{port}: garbage in answer to {command}: {problem}")]
    Garbage {
        port: String,
        command: &'static str,
        problem: String,
    },
    #[error("{port}: {source}")]
    Io { port: String, source: io::Error },
}

/// Asks `commands` on `port` and returns the kept answer lines, one per line, each command's
/// block preceded by the command itself (the transcript the AT parsers read).
pub async fn ask(
    port: &Path,
    baud: u32,
    commands: &[AtCommand],
    timeout: Duration,
) -> Result<String, SerialError> {
    let name = port.display().to_string();
    let fd = open(port, baud).map_err(|e| e.with_port(&name))?;
    // `with_interest` is deprecated because a generic `T` could hand out another fd later; an
    // `OwnedFd` always returns the one it owns until dropped, which is what the safe call needs.
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(fd, Interest::READABLE | Interest::WRITABLE);
    let fd = registered.map_err(|source| SerialError::Setup {
        port: name.clone(),
        source,
    })?;
    let mut transcript = String::new();
    for command in commands {
        discard_pending(&fd).map_err(|source| SerialError::Io {
            port: name.clone(),
            source,
        })?;
        let deadline = Instant::now() + timeout;
        let lines = match tokio::time::timeout_at(deadline, exchange(&fd, command)).await {
            Err(_) => {
                return Err(SerialError::Timeout {
                    port: name,
                    command: command.text,
                    timeout,
                });
            }
            Ok(result) => result.map_err(|e| e.with_port(&name))?,
        };
        match lines {
            Answer::Ok(lines) => {
                transcript.push_str(command.text);
                transcript.push('\n');
                for line in lines {
                    transcript.push_str(&line);
                    transcript.push('\n');
                }
            }
            Answer::Error(answer) if command.required => {
                return Err(SerialError::Refused {
                    port: name,
                    command: command.text,
                    answer,
                });
            }
            Answer::Error(_) => {}
        }
    }
    Ok(transcript)
}

/// An error before the port name is known to it.
enum Failure {
    Open(io::Error),
    Setup(io::Error),
    Io(io::Error),
    Garbage(&'static str, String),
}

impl Failure {
    fn with_port(self, port: &str) -> SerialError {
        let port = port.to_owned();
        match self {
            Failure::Open(source) => SerialError::Open { port, source },
            Failure::Setup(source) => SerialError::Setup { port, source },
            Failure::Io(source) => SerialError::Io { port, source },
            Failure::Garbage(command, problem) => SerialError::Garbage {
                port,
                command,
                problem,
            },
        }
    }
}

enum Answer {
    /// The information lines kept, in order.
    Ok(Vec<String>),
    /// The error result code as received.
    Error(String),
}

fn open(port: &Path, baud: u32) -> Result<OwnedFd, Failure> {
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(port, flags, Mode::empty()).map_err(|e| Failure::Open(e.into()))?;
    let setup = |fd: &OwnedFd| -> rustix::io::Result<()> {
        let mut t = termios::tcgetattr(fd)?;
        t.make_raw();
        t.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
        t.set_speed(baud)?;
        termios::tcsetattr(fd, OptionalActions::Now, &t)?;
        termios::tcflush(fd, QueueSelector::IFlush)
    };
    setup(&fd).map_err(|e| Failure::Setup(e.into()))?;
    Ok(fd)
}

/// Reads and drops whatever is waiting (bounded: a port that never stops talking is garbage
/// later, when its answer overflows).
fn discard_pending(fd: &AsyncFd<OwnedFd>) -> io::Result<()> {
    let mut buf = [0u8; 512];
    for _ in 0..64 {
        match rustix::io::read(fd.get_ref(), &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends `command` and reads its answer up to the final result code.
async fn exchange(fd: &AsyncFd<OwnedFd>, command: &AtCommand) -> Result<Answer, Failure> {
    let line = format!("{}\r", command.text);
    write_all(fd, line.as_bytes()).await.map_err(Failure::Io)?;
    let garbage = |problem: String| Failure::Garbage(command.text, problem);
    let mut pending: Vec<u8> = Vec::new();
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 512];
    loop {
        let n = read_some(fd, &mut buf).await.map_err(Failure::Io)?;
        if n == 0 {
            return Err(Failure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the port was closed",
            )));
        }
        total += n;
        if total > MAX_ANSWER {
            return Err(garbage(format!(
                "more than {MAX_ANSWER} bytes without a final result code"
            )));
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\r' || b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if text == "OK" {
                return Ok(Answer::Ok(kept));
            }
            if text == "ERROR" || text.starts_with("+CME ERROR") || text.starts_with("+CMS ERROR") {
                return Ok(Answer::Error(text.to_owned()));
            }
            if is_answer(text, command.answer) {
                kept.push(text.to_owned());
            }
        }
        if pending.len() > MAX_LINE {
            return Err(garbage(format!("a line longer than {MAX_LINE} bytes")));
        }
    }
}

/// `+CESQ: …` answers `+CESQ` (case-insensitive, space before the colon tolerated).
fn is_answer(line: &str, prefix: &str) -> bool {
    line.split_once(':')
        .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case(prefix))
}

async fn read_some(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        match guard
            .try_io(|inner| rustix::io::read(inner.get_ref(), &mut *buf).map_err(io::Error::from))
        {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

async fn write_all(fd: &AsyncFd<OwnedFd>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = fd.writable().await?;
        match guard
            .try_io(|inner| rustix::io::write(inner.get_ref(), bytes).map_err(io::Error::from))
        {
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_answer;

    #[test]
    fn answers_are_told_from_urcs() {
        assert!(is_answer("+CESQ: 99,99,255,255,20,42", "+CESQ"));
        assert!(is_answer("+cesq : 1", "+CESQ"));
        assert!(!is_answer("+CEREG: 1", "+CESQ"));
        assert!(!is_answer("RING", "+CESQ"));
        assert!(!is_answer("+QENGX: 1", "+QENG"));
    }
}
