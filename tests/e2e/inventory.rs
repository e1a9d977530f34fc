//! The site inventory through the real binary: a bad inventory makes `check` exit 64 naming the
//! inventory file and the key; `inventory import` of a spreadsheet export (BOM, semicolons,
//! quoted fields, Vietnamese names) writes TOML the collector loads with the diacritics intact;
//! `inventory show` lists the registered agents never seen and the agents seen but not
//! registered, read from a running collector's store.

use std::path::Path;
use std::time::Duration;

use netmon_events::encode_batch;
use netmon_tests::daemons::daemon_command;
use netmon_tests::{Collector, Scratch, poll_until, publish, shared_url};
use serde_json::Value;

use netmon_events::testing::{Boot, events_topic, started};

const PROVINCE: &str = "inventory-e2e";

const COLLECTOR: &str = r#"inventory = "inventory.toml"

[mqtt]
url = "mqtt://127.0.0.1:1883"
province = "thanh-hoa"

[store]
path = "/tmp/netmon-never-created.db"
"#;

/// (exit code, stdout, stderr) of `netmon-collector ARGS`.
fn collector(args: &[&str]) -> (Option<i32>, String, String) {
    let output = daemon_command("netmon-collector")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/examples")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn inventory_errors_exit_64_naming_the_inventory_file_and_key() {
    let _ = shared_url();
    let scratch = Scratch::new("inventory-bad").unwrap();
    let config = scratch.write("collector.toml", COLLECTOR).unwrap();
    let good = example("inventory.toml");
    let inventory = scratch.write("inventory.toml", &good).unwrap();
    let (code, out, err) = collector(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("inventory:  2 provinces, 4 communes, 8 sites (8 with coordinates), 8 agents, 6 contacts"),
        "{out}"
    );
    let cases = [
        (
            "dangling parent",
            "parent = \"cam-tu-ubnd\"",
            "parent = \"cam-tu-nowhere\"",
            "sites[1].parent",
        ),
        (
            "agent at two sites",
            "agents = [\"thanh-hoa-cam-tu-cam-hoa\"]",
            "agents = [\"thanh-hoa-cam-tu-ubnd\"]",
            "sites[2].agents[0]",
        ),
        (
            "parent cycle",
            "parent = \"cam-tu-giang-trung\"",
            "parent = \"cam-tu-tan-ngoc\"",
            "sites[3].parent",
        ),
        (
            "bad e-mail",
            "to = \"giamsat@thanhhoa.gov.vn\"",
            "to = \"giamsat\"",
            "contacts[0].to",
        ),
    ];
    for (name, from, to, key) in cases {
        assert!(good.contains(from), "{name}");
        std::fs::write(&inventory, good.replacen(from, to, 1)).unwrap();
        let (code, out, err) = collector(&["check", "--config", config.to_str().unwrap()]);
        assert_eq!(code, Some(64), "{name}: {out}{err}");
        let expected = format!("{}: {key}: ", inventory.display());
        assert!(
            err.contains(&expected),
            "{name}: expected {expected:?} in {err}"
        );
    }
    // A missing inventory file is the collector config's `inventory` key at fault.
    std::fs::remove_file(&inventory).unwrap();
    let (code, _, err) = collector(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains(&format!("{}: inventory: ", config.display())),
        "{err}"
    );
}

/// A spreadsheet exported by Excel in a Vietnamese locale: UTF-8 with BOM, `;`-separated,
/// decimal commas, CRLF, quoted cells with `;`, `"` and a line break, Vietnamese headers.
const SITES_CSV: &str = "\u{feff}Mã tỉnh;Tỉnh;Mã xã;Tên xã;Mã thôn;Tên thôn;Loại;Trạm cha;Vĩ độ;Kinh độ;Agent;Liên hệ;Liên hệ tỉnh;Liên hệ xã\r\n\
thanh-hoa;Thanh Hóa;kien-tho;xã Kiên Thọ;kt-ubnd;\"UBND xã Kiên Thọ; \"\"trụ sở\"\"\";UBND;;20,0339;105,5702;inv-kt-ubnd;;ttgs;kt-it\r\n\
thanh-hoa;Thanh Hóa;kien-tho;xã Kiên Thọ;kt-tho-lien;\"thôn\r\nThọ Liên\";thôn;kt-ubnd;20,0415;105,5838;inv-kt-tho-lien;tl-truong-thon;;\r\n\
thanh-hoa;Thanh Hóa;dinh-long;xã Định Long;dl-phvhcc;Trung tâm phục vụ hành chính công xã Định Long;public_service_centre;;;;inv-dl-1 inv-dl-2;;;\r\n";

const CONTACTS_CSV: &str = "\u{feff}Mã;Họ tên;Kênh;Địa chỉ;Ngôn ngữ\r\n\
ttgs;\"Trung tâm giám sát, điều hành thông minh\";email;giamsat@thanhhoa.gov.vn;vi\r\n\
kt-it;Nguyễn Thị Lan (CNTT xã Kiên Thọ);telegram;-1001234567890;\r\n\
tl-truong-thon;Trưởng thôn Thọ Liên;webhook;https://hooks.example.vn/tho-lien;en\r\n";

#[test]
fn inventory_import_round_trips_a_bom_semicolon_csv_with_vietnamese_names() {
    let _ = shared_url();
    let scratch = Scratch::new("inventory-import").unwrap();
    let sites = scratch.write("danh-muc-tram.csv", SITES_CSV).unwrap();
    let contacts = scratch.write("lien-he.csv", CONTACTS_CSV).unwrap();
    let output = scratch.join("inventory.toml");
    let (code, out, err) = collector(&[
        "inventory",
        "import",
        "--sites",
        sites.to_str().unwrap(),
        "--contacts",
        contacts.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("1 provinces, 2 communes, 3 sites"), "{err}");

    // The TOML loads with the collector's loader, names intact.
    let inventory = netmon_collector::inventory::load(&output).unwrap();
    assert_eq!(
        inventory.sites["kt-ubnd"].name,
        "UBND xã Kiên Thọ; \"trụ sở\""
    );
    assert_eq!(inventory.sites["kt-tho-lien"].name, "thôn Thọ Liên");
    assert_eq!(inventory.sites["kt-tho-lien"].lat, Some(20.0415));
    assert_eq!(inventory.sites["dl-phvhcc"].agents.len(), 2);
    assert_eq!(inventory.communes["dinh-long"].name, "xã Định Long");
    assert_eq!(
        inventory.provinces.values().next().unwrap().name,
        "Thanh Hóa"
    );
    assert_eq!(
        inventory.contacts["ttgs"].name,
        "Trung tâm giám sát, điều hành thông minh"
    );
    let tho_lien = &inventory.sites["kt-tho-lien"];
    let notified: Vec<_> = inventory
        .contacts_for(tho_lien)
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(notified, ["tl-truong-thon", "kt-it", "ttgs"]);

    // And the daemon accepts it.
    let config = scratch.write("collector.toml", COLLECTOR).unwrap();
    let (code, out, err) = collector(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");

    // Without --output the TOML goes to stdout.
    let (code, out, err) = collector(&[
        "inventory",
        "import",
        "--sites",
        sites.to_str().unwrap(),
        "--contacts",
        contacts.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, std::fs::read_to_string(&output).unwrap());

    // A bad cell: exit 64 naming the CSV file, the line and the column.
    let bad = scratch
        .write("bad.csv", SITES_CSV.replace("105,5838", "phía đông"))
        .unwrap();
    let (code, _, err) = collector(&[
        "inventory",
        "import",
        "--sites",
        bad.to_str().unwrap(),
        "--contacts",
        contacts.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains(&format!("{}: line 3, column lon: ", bad.display())),
        "{err}"
    );
}

#[test]
fn inventory_show_lists_unseen_and_unknown_agents_from_the_store() {
    let url = shared_url();
    let scratch = Scratch::new("inventory-show").unwrap();
    let inventory = scratch
        .write(
            "inventory.toml",
            format!(
                "[[provinces]]\nid = \"{PROVINCE}\"\nname = \"Thanh Hóa\"\n\
                 [[communes]]\nid = \"cam-tu\"\nprovince = \"{PROVINCE}\"\nname = \"xã Cẩm Tú\"\n\
                 [[sites]]\nid = \"ubnd\"\ncommune = \"cam-tu\"\nname = \"UBND xã Cẩm Tú\"\nagents = [\"inv-seen\"]\n\
                 [[sites]]\nid = \"giang-trung\"\ncommune = \"cam-tu\"\nparent = \"ubnd\"\nname = \"thôn Giang Trung\"\nkind = \"village\"\nagents = [\"inv-never\"]\n"
            ),
        )
        .unwrap();
    let collector_daemon = Collector::start_with_inventory(
        "collector",
        &scratch,
        PROVINCE,
        &url,
        None,
        Some(inventory.display().to_string()),
    )
    .unwrap();
    for agent in ["inv-seen", "inv-stranger"] {
        let mut boot = Boot::new(agent);
        let batch = encode_batch(&[boot.next(started())]);
        publish(&url, &events_topic(PROVINCE, agent), &batch).unwrap();
    }
    let config = collector_daemon.config_path.to_str().unwrap().to_owned();
    let shown = poll_until(Duration::from_secs(20), || {
        let (code, out, _) = collector(&["inventory", "show", "--config", &config, "--json"]);
        let value: Value = serde_json::from_str(&out).ok()?;
        let unknown = value["unknown"].as_array()?;
        (code == Some(0) && unknown.iter().any(|u| u["agent"] == "inv-stranger")).then_some(value)
    })
    .expect("inventory show lists inv-stranger within 20 s");
    assert_eq!(
        shown["never_seen"],
        serde_json::json!([{"agent": "inv-never", "site": "giang-trung"}])
    );
    assert!(
        !shown["unknown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["agent"] == "inv-seen" || u["agent"] == "inv-never"),
        "{shown}"
    );
    let names: Vec<_> = shown["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["thôn Giang Trung", "UBND xã Cẩm Tú"]);

    // The table, in Vietnamese.
    let (code, out, err) = collector(&["inventory", "show", "--config", &config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("thôn Giang Trung"), "{out}");
    assert!(out.contains("chưa từng gửi dữ liệu (1)"), "{out}");
    assert!(out.contains("inv-stranger"), "{out}");
}
