//! A cellular modem emulator on a real pseudo-terminal (`modem.py`, python3 standard library):
//! answers AT commands from the agent's 27.007 fixtures (`agent/tests/fixtures/cellular/at/`),
//! echoes, sends URCs, and switches at run time between answering normally, from another
//! fixture, hanging and answering garbage. Stopped by pid when dropped; an mmcli stand-in (a
//! real executable script printing the agent's mmcli fixtures) for the `mmcli` source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// The emulator's source, written into the scratch directory.
const MODEM_PY: &str = include_str!("modem.py");

/// How the emulated modem behaves from its next command on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// LTE on Viettel, home (`at/lte_home.txt`).
    Normal,
    /// EN-DC, roaming (`at/endc_roaming.txt`).
    Nsa,
    /// Searching, no service (`at/searching.txt`).
    NoService,
    /// Reads commands and never answers.
    Hang,
    /// Answers random printable bytes without a line end.
    Garbage,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Nsa => "nsa",
            Mode::NoService => "nosvc",
            Mode::Hang => "hang",
            Mode::Garbage => "garbage",
        }
    }
}

/// The agent's cellular fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/cellular")
}

/// A running emulator; its serial port is [`ModemEmulator::port`].
#[derive(Debug)]
pub struct ModemEmulator {
    pub port: PathBuf,
    control: PathBuf,
    proc: Proc,
}

impl ModemEmulator {
    /// Starts `modem.py` (log `scratch/{name}.log`) and waits until its pty exists.
    pub fn start(name: &str, scratch: &Scratch) -> anyhow::Result<Self> {
        let script = scratch.join("modem.py");
        std::fs::write(&script, MODEM_PY).context("writing modem.py")?;
        let control = scratch.join(&format!("{name}.mode"));
        let port_file = scratch.join(&format!("{name}.port"));
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg(fixtures().join("at"))
            .arg(&control)
            .arg(&port_file)
            .arg("600");
        let mut proc = Proc::spawn(name, command, &scratch.join(&format!("{name}.log")))?;
        let port = poll_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&port_file).ok().map(PathBuf::from)
        });
        let Some(port) = port else {
            proc.assert_running()?;
            anyhow::bail!(
                "the modem emulator wrote no port within 10 s: {}",
                proc.log()
            );
        };
        let emulator = Self {
            port,
            control,
            proc,
        };
        emulator.set(Mode::Normal)?;
        Ok(emulator)
    }

    /// Switches the mode (atomically: the emulator reads the file at every command).
    pub fn set(&self, mode: Mode) -> anyhow::Result<()> {
        let tmp = self.control.with_extension("tmp");
        std::fs::write(&tmp, mode.word()).context("writing the mode file")?;
        std::fs::rename(&tmp, &self.control).context("renaming the mode file")
    }

    /// What it was asked, as it logged it (`mode: command` lines).
    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn assert_running(&mut self) -> anyhow::Result<()> {
        self.proc.assert_running()
    }
}

/// Writes an executable `mmcli` stand-in into `scratch`: `-m N -J` prints `status`,
/// `-m N --signal-get -J` prints `signal` (both files of the agent's mmcli fixtures),
/// `--signal-setup=…` succeeds, anything else fails like mmcli does. Returns its path.
pub fn mmcli_script(scratch: &Scratch, status: &str, signal: &str) -> anyhow::Result<PathBuf> {
    let dir = fixtures().join("mmcli");
    let script = format!(
        "#!/bin/sh\n\
         # mmcli stand-in for the netmon tests: prints the agent's mmcli fixtures.\n\
         case \"$*\" in\n\
           *--signal-setup=*) echo \"successfully setup signal quality information\" ;;\n\
           *--signal-get*) cat '{signal}' ;;\n\
           \"-m \"*\" -J\") cat '{status}' ;;\n\
           *) echo \"error: unexpected arguments: $*\" >&2; exit 1 ;;\n\
         esac\n",
        status = dir.join(status).display(),
        signal = dir.join(signal).display(),
    );
    let path = scratch.write("mmcli", script)?;
    let mut permissions = std::fs::metadata(&path)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions)?;
    Ok(path)
}
