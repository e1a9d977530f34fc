//! The configuration and inventory loaders on arbitrary text: the agent's and the collector's
//! `Config::load_with_env` (TOML in a scratch file, no environment overrides; the collector's
//! `inventory = "inventory.toml"` finds the example inventory beside it), the inventory loader
//! (`inventory::parse`) and the CSV import (`inventory::import::convert`, sites and contacts).
//! The first byte picks the loader; for the CSV import a `0xff` byte separates the sites file
//! from the contacts file. Asserts: nothing panics, and errors are errors (a `ConfigError` with a
//! file name and a problem).
#![no_main]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use netmon_collector::inventory::{self, import};

const EXAMPLE_INVENTORY: &str = include_str!("../../deploy/examples/inventory.toml");

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("netmon-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        std::fs::write(dir.join("inventory.toml"), EXAMPLE_INVENTORY).expect("writes");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let path = scratch().join("agent.toml");
            std::fs::write(&path, rest).expect("writes");
            if let Err(e) = netmon_agent::Config::load_with_env(&path, Some(HashMap::new())) {
                assert!(!e.file.is_empty() && !e.problem.is_empty(), "{e:?}");
            }
        }
        1 => {
            let path = scratch().join("collector.toml");
            std::fs::write(&path, rest).expect("writes");
            if let Err(e) = netmon_collector::Config::load_with_env(&path, Vec::new()) {
                assert!(!e.file.is_empty() && !e.problem.is_empty(), "{e:?}");
            }
        }
        2 => {
            let text = String::from_utf8_lossy(rest);
            if let Err(e) = inventory::parse(&text, "inventory.toml") {
                assert!(!e.problem.is_empty(), "{e:?}");
            }
        }
        _ => {
            let (sites, contacts) = match rest.iter().position(|&b| b == 0xff) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            let sites = import::CsvFile {
                name: "sites.csv",
                bytes: sites,
            };
            let contacts = contacts.map(|bytes| import::CsvFile {
                name: "contacts.csv",
                bytes,
            });
            match import::convert(sites, contacts) {
                Ok((text, converted)) => {
                    let again = inventory::parse(&text, "(converted)")
                        .expect("the TOML the import wrote loads");
                    assert_eq!(again, converted, "the import's TOML loads differently");
                }
                Err(e) => assert!(!e.problem.is_empty(), "{e:?}"),
            }
        }
    }
});
