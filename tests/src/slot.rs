//! Subnet slots for labs: each running lab claims a number in `/tmp/netmon-lab-slots`, and with it
//! its own `10.{100+n/256}.{n%256}.0/24`, so that labs running at the same time (nextest runs each
//! test in its own process) never use the same addresses.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const SLOT_DIR: &str = "/tmp/netmon-lab-slots";
const SLOTS: u32 = 4096;

/// A subnet slot, held as a file `/tmp/netmon-lab-slots/{n}` containing the owner's pid. Slots of
/// dead processes are reclaimed. (Two processes reclaiming the same stale slot at the same instant
/// could share it; that is harmless, since each lab's namespaces only see each other.)
#[derive(Debug)]
pub struct Slot {
    number: u32,
    path: PathBuf,
}

impl Slot {
    pub fn claim() -> anyhow::Result<Self> {
        std::fs::create_dir_all(SLOT_DIR).with_context(|| format!("creating {SLOT_DIR}"))?;
        let pid = std::process::id();
        let start = pid % SLOTS;
        for i in 0..SLOTS {
            let number = (start + i) % SLOTS;
            let path = Path::new(SLOT_DIR).join(number.to_string());
            for _attempt in 0..2 {
                match std::fs::File::create_new(&path) {
                    Ok(mut file) => {
                        file.write_all(pid.to_string().as_bytes())
                            .with_context(|| format!("writing {}", path.display()))?;
                        return Ok(Self { number, path });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let owner = std::fs::read_to_string(&path).unwrap_or_default();
                        let alive = owner
                            .trim()
                            .parse::<u32>()
                            .is_ok_and(|p| Path::new("/proc").join(p.to_string()).exists());
                        if alive {
                            break;
                        }
                        let _ = std::fs::remove_file(&path);
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("creating {}", path.display()));
                    }
                }
            }
        }
        bail!("all {SLOTS} lab subnet slots in {SLOT_DIR} are taken")
    }

    /// The second and third octets of the slot's `10.x.y.0/24`.
    pub fn octets(&self) -> [u8; 2] {
        // number < 4096, so 100 + number / 256 ≤ 115.
        [(100 + self.number / 256) as u8, (self.number % 256) as u8]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
