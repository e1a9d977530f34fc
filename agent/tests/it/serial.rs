//! The serial AT session (`cellular::serial::ask`) against a real pseudo-terminal: the test plays
//! the modem on the master side (a thread answering a fixed number of commands), the agent opens
//! the slave like a modem's tty. Echo, URCs, optional commands answered `ERROR`, a required one
//! answered `+CME ERROR`, a modem that hangs, one that answers garbage, and ports that are not
//! serial ports.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netmon_agent::cellular::reader::GPP_COMMANDS;
use netmon_agent::cellular::serial::{self, AtCommand, SerialError};
use rustix::pty::OpenptFlags;

/// A pty pair: the master (the modem's side) and the slave's path. The test keeps its own slave
/// fd open, so the master never sees a hang-up between the agent's sessions.
struct Pty {
    master: OwnedFd,
    path: PathBuf,
    _slave: OwnedFd,
}

fn pty() -> Pty {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    rustix::pty::grantpt(&master).unwrap();
    rustix::pty::unlockpt(&master).unwrap();
    let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
    let path = PathBuf::from(OsStr::from_bytes(name.as_bytes()));
    let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY;
    let slave = rustix::fs::open(&path, flags, rustix::fs::Mode::empty()).unwrap();
    let mut t = rustix::termios::tcgetattr(&slave).unwrap();
    t.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t).unwrap();
    Pty {
        master,
        path,
        _slave: slave,
    }
}

/// Plays the modem: reads `count` commands and writes `answer(command)` (with the echo first);
/// returns the commands it read.
fn modem(
    master: OwnedFd,
    count: usize,
    answer: impl Fn(&str) -> String + Send + 'static,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut commands = Vec::new();
        let mut pending = Vec::new();
        let mut buf = [0u8; 256];
        while commands.len() < count {
            let Ok(n) = rustix::io::read(&master, &mut buf) else {
                break;
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\r') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let command = String::from_utf8_lossy(&line[..end]).trim().to_owned();
                let reply = format!("{command}\r{}", answer(&command));
                rustix::io::write(&master, reply.as_bytes()).unwrap();
                commands.push(command);
            }
        }
        commands
    })
}

fn ask(pty: &Pty, commands: &[AtCommand], timeout: Duration) -> Result<String, SerialError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(serial::ask(&pty.path, 115_200, commands, timeout))
}

#[test]
fn answers_are_kept_urcs_and_unknown_commands_dropped() {
    let pty = pty();
    let master = pty.master.try_clone().unwrap();
    let responder = modem(master, 5, |command| match command {
        "AT+CESQ" => {
            "\r\nRING\r\n\r\n+CESQ: 99,99,255,255,20,42\r\n+QIURC: \"pdpdeact\",1\r\n\r\nOK\r\n"
                .into()
        }
        "AT+COPS=3,2" => "\r\nOK\r\n".into(),
        "AT+COPS?" => "\r\n+COPS: 0,2,\"45204\",7\r\n\r\nOK\r\n".into(),
        "AT+CEREG?" => "\r\n+CEREG: 2,1,\"1A2B\",\"01A2B3C4\",7\r\nOK\r\n".into(),
        _ => "\r\nERROR\r\n".into(),
    });
    let transcript = ask(&pty, GPP_COMMANDS, Duration::from_secs(5)).unwrap();
    assert_eq!(
        transcript,
        "AT+CESQ\n+CESQ: 99,99,255,255,20,42\nAT+COPS=3,2\nAT+COPS?\n+COPS: 0,2,\"45204\",7\n\
         AT+CEREG?\n+CEREG: 2,1,\"1A2B\",\"01A2B3C4\",7\n"
    );
    assert_eq!(
        responder.join().unwrap(),
        [
            "AT+CESQ",
            "AT+COPS=3,2",
            "AT+COPS?",
            "AT+CEREG?",
            "AT+C5GREG?"
        ]
    );
    // And the AT parser reads it.
    let signal =
        netmon_agent::cellular::parse(netmon_agent::cellular::Format::At, &transcript).unwrap();
    assert_eq!(signal.rsrp_dbm, Some(-98.0));
    assert_eq!(signal.plmn.as_deref(), Some("452-04"));
}

#[test]
fn a_required_command_refused_fails_the_session() {
    let pty = pty();
    let responder = modem(pty.master.try_clone().unwrap(), 1, |_| {
        "\r\n+CME ERROR: 10\r\n".into()
    });
    let e = ask(&pty, GPP_COMMANDS, Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(&e, SerialError::Refused { command: "AT+CESQ", answer, .. } if answer == "+CME ERROR: 10"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{}: AT+CESQ answered +CME ERROR: 10", pty.path.display())
    );
    responder.join().unwrap();
}

#[test]
fn a_hanging_modem_times_out_on_its_command() {
    let pty = pty();
    // Reads the command and never answers (not even the echo's line end is a final code).
    let responder = modem(pty.master.try_clone().unwrap(), 1, |_| String::new());
    let started = Instant::now();
    let e = ask(&pty, GPP_COMMANDS, Duration::from_millis(300)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            e,
            SerialError::Timeout {
                command: "AT+CESQ",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    responder.join().unwrap();
}

#[test]
fn garbage_is_an_error_not_a_hang() {
    let pty = pty();
    let responder = modem(pty.master.try_clone().unwrap(), 1, |_| "x".repeat(3000));
    let e = ask(&pty, GPP_COMMANDS, Duration::from_secs(5)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("garbage in answer to AT+CESQ: a line longer than 1024 bytes"),
        "{e}"
    );
    responder.join().unwrap();
}

#[test]
fn ports_that_are_not_serial_ports() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let missing = runtime.block_on(serial::ask(
        std::path::Path::new("/dev/ttyNETMON-none"),
        115_200,
        GPP_COMMANDS,
        Duration::from_secs(1),
    ));
    assert!(
        matches!(missing, Err(SerialError::Open { .. })),
        "{missing:?}"
    );
    let null = runtime.block_on(serial::ask(
        std::path::Path::new("/dev/null"),
        115_200,
        GPP_COMMANDS,
        Duration::from_secs(1),
    ));
    let e = null.unwrap_err();
    assert!(e.to_string().contains("not a serial port"), "{e}");
}
