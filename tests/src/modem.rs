//! A cellular modem emulator on a real pseudo-terminal (`modem.py`, python3 standard library):
//! answers AT commands from the agent's 27.007 fixtures (`agent/tests/fixtures/cellular/at/`),
//! echoes, sends URCs, and switches at run time between answering normally, from another
//! fixture (3GPP or Quectel), hanging and answering garbage. Stopped by pid when dropped; and
//! `mmcli`/`uqmi` stand-ins (real executable scripts printing the agent's fixtures).

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
    /// A Quectel modem on LTE (`quectel/lte.txt`).
    Quectel,
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
            Mode::Quectel => "quectel",
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

/// Writes an executable stand-in for a modem tool into `scratch/{name}`: a shell script that,
/// for the first `(pattern, fixture)` whose shell `case` pattern matches its arguments (`"$*"`),
/// prints that file (relative to the agent's cellular fixtures, or absolute; `""`: prints
/// nothing), and otherwise fails
/// like the real tool. Returns its path.
pub fn tool_script(
    scratch: &Scratch,
    name: &str,
    cases: &[(&str, &str)],
) -> anyhow::Result<PathBuf> {
    let mut script = format!(
        "#!/bin/sh\n# {name} stand-in for the netmon tests: prints the agent's fixtures.\ncase \"$*\" in\n"
    );
    for (pattern, fixture) in cases {
        let action = if fixture.is_empty() {
            "true".to_owned()
        } else {
            format!("cat '{}'", fixtures().join(fixture).display())
        };
        script.push_str(&format!("  {pattern}) {action} ;;\n"));
    }
    script.push_str("  *) echo \"error: unexpected arguments: $*\" >&2; exit 1 ;;\nesac\n");
    let path = scratch.write(name, script)?;
    let mut permissions = std::fs::metadata(&path)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions)?;
    Ok(path)
}

/// An `mmcli` stand-in: `-m N -J` prints `mmcli/{status}`, `-m N --signal-get -J` prints
/// `mmcli/{signal}`, `--signal-setup=…` succeeds.
pub fn mmcli_script(scratch: &Scratch, status: &str, signal: &str) -> anyhow::Result<PathBuf> {
    let status = format!("mmcli/{status}");
    let signal = format!("mmcli/{signal}");
    tool_script(
        scratch,
        "mmcli",
        &[
            ("*--signal-setup=*", ""),
            ("*--signal-get*", &signal),
            ("\"-m \"*\" -J\"", &status),
        ],
    )
}

/// A `uqmi` stand-in: `-d DEV --get-signal-info` prints `uqmi/{signal}`,
/// `-d DEV --get-serving-system` prints `uqmi/{serving}`.
pub fn uqmi_script(scratch: &Scratch, signal: &str, serving: &str) -> anyhow::Result<PathBuf> {
    let signal = format!("uqmi/{signal}");
    let serving = format!("uqmi/{serving}");
    tool_script(
        scratch,
        "uqmi",
        &[
            ("*--get-signal-info", &signal),
            ("*--get-serving-system", &serving),
        ],
    )
}
