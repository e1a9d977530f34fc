//! Tests of the inventory loader, its validation errors and the CSV import, driven by the example
//! files in `deploy/examples/`.
#![allow(clippy::unwrap_used)]

use super::import::{self, CsvFile};
use super::*;

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/examples")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn ids<'a>(sites: impl IntoIterator<Item = &'a Site>) -> Vec<&'a str> {
    sites.into_iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn the_example_loads_with_its_topology_and_contacts() {
    let inv = parse(&example("inventory.toml"), "inventory.toml").unwrap();
    assert_eq!(
        (
            inv.provinces.len(),
            inv.communes.len(),
            inv.sites.len(),
            inv.agents.len()
        ),
        (2, 4, 8, 8)
    );
    let agent = AgentId::new("thanh-hoa-cam-tu-tan-ngoc").unwrap();
    let site = inv.site_of(&agent).unwrap();
    assert_eq!(site.name, "thôn Tân Ngọc");
    assert_eq!(inv.commune_of(site).unwrap().name, "xã Cẩm Tú");
    assert_eq!(
        ids(inv.ancestors(site)),
        ["cam-tu-giang-trung", "cam-tu-ubnd"]
    );
    assert_eq!(
        ids(inv.descendants("cam-tu-ubnd")),
        ["cam-tu-cam-hoa", "cam-tu-giang-trung", "cam-tu-tan-ngoc"]
    );
    let contacts: Vec<_> = inv
        .contacts_for(site)
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        contacts,
        ["giang-trung-truong-thon", "cam-tu-it", "trung-tam-giam-sat"]
    );
    let giang_trung = &inv.sites["cam-tu-giang-trung"];
    assert_eq!(giang_trung.thresholds.loss_pct, Some(15.0));
    assert_eq!(giang_trung.kind, SiteKind::Village);
    assert_eq!(inv.contacts["giang-trung-truong-thon"].lang, "vi");
    assert_eq!(inv.contacts["hue-soc-webhook"].channel, Channel::Webhook);
    assert!(inv.summary().starts_with(
        "2 provinces, 4 communes, 8 sites (8 with coordinates), 8 agents, 6 contacts"
    ));
}

/// Each case edits the example; the error must name the key path.
#[test]
fn errors_name_the_key_path_and_the_expectation() {
    let good = example("inventory.toml");
    let cases: &[(&str, &str, &str)] = &[
        (
            "parent = \"cam-tu-ubnd\"",
            "parent = \"cam-tu-nowhere\"",
            "sites[1].parent",
        ),
        (
            "agents = [\"thanh-hoa-cam-tu-cam-hoa\"]",
            "agents = [\"thanh-hoa-cam-tu-giang-trung\"]",
            "sites[2].agents[0]",
        ),
        (
            "agents = [\"thanh-hoa-cam-tu-cam-hoa\"]",
            "agents = [\"thôn-cẩm-hoa\"]",
            "sites[2].agents[0]",
        ),
        (
            "parent = \"cam-tu-giang-trung\"",
            "parent = \"cam-tu-tan-ngoc\"",
            "sites[3].parent",
        ),
        ("lat = 20.0431", "lat = 120.0431", "sites[2].lat"),
        ("lon = 105.4652", "lon = 205.4652", "sites[2].lon"),
        ("lon = 105.4652\n", "", "sites[2].lon"),
        (
            "to = \"giamsat@thanhhoa.gov.vn\"",
            "to = \"giamsat.thanhhoa.gov.vn\"",
            "contacts[0].to",
        ),
        (
            "to = \"giamsat@thanhhoa.gov.vn\"",
            "to = \"giamsat@localhost\"",
            "contacts[0].to",
        ),
        ("to = \"123456789\"", "to = \"Hùng\"", "contacts[1].to"),
        (
            "to = \"https://soc.hue.example.vn/netmon/alerts\"",
            "to = \"soc.hue.example.vn/alerts\"",
            "contacts[5].to",
        ),
        (
            "channel = \"email\"",
            "channel = \"zalo\"",
            "contacts[0].channel",
        ),
        ("lang = \"en\"", "lang = \"fr\"", "contacts[5].lang"),
        (
            "contacts = [\"cam-tu-it\"]",
            "contacts = [\"cam-tu-cntt\"]",
            "communes[0].contacts[0]",
        ),
        (
            "contacts = [\"giang-trung-truong-thon\"]",
            "contacts = [\"x\"]",
            "sites[1].contacts[0]",
        ),
        (
            "province = \"hue\"",
            "province = \"da-nang\"",
            "communes[3].province",
        ),
        (
            "commune = \"dinh-long\"",
            "commune = \"dinh-long-2\"",
            "sites[6].commune",
        ),
        (
            "id = \"cam-tu-cam-hoa\"",
            "id = \"cam-tu-ubnd\"",
            "sites[2].id",
        ),
        ("id = \"kien-tho\"", "id = \"cam-tu\"", "communes[1].id"),
        (
            "name = \"thôn Thọ Liên\"",
            "name = \"thôn\\tThọ Liên\"",
            "sites[5].name",
        ),
        (
            "name = \"xã Định Long\"",
            "name = \" \"",
            "communes[2].name",
        ),
        ("kind = \"village\"", "kind = \"hamlet\"", "sites[1].kind"),
        (
            "{ loss_pct = 15.0 }",
            "{ loss_pct = 150.0 }",
            "sites[1].thresholds.loss_pct",
        ),
        (
            "{ loss_pct = 15.0 }",
            "{ latency_ms = -1.0 }",
            "sites[1].thresholds.latency_ms",
        ),
        (
            "id = \"thanh-hoa\"",
            "id = \"thanh hoa\"",
            "provinces[0].id",
        ),
    ];
    for (from, to, key) in cases {
        assert!(good.contains(from), "{from}");
        let e = parse(&good.replacen(from, to, 1), "inv.toml").unwrap_err();
        assert_eq!(&e.key, key, "{from} → {to}: {e}");
        assert_eq!(e.file, "inv.toml");
        assert!(e.problem.len() > 10, "{e}");
    }
    // Unknown keys and wrong types are refused by the raw structs, naming the key and line.
    for (from, to, word) in [
        (
            "kind = \"village\"",
            "kind = \"village\"\ncolour = \"red\"",
            "colour",
        ),
        ("{ loss_pct = 15.0 }", "{ loss = 15.0 }", "loss"),
        ("lat = 20.0517", "lat = \"20.0517\"", "line"),
    ] {
        let e = parse(&good.replacen(from, to, 1), "inv.toml").unwrap_err();
        assert!(e.to_string().contains(word), "{e}");
        assert!(e.to_string().starts_with("inv.toml: "), "{e}");
    }
}

#[test]
fn load_names_a_missing_file() {
    let e = load(std::path::Path::new("/nonexistent/inventory.toml")).unwrap_err();
    assert_eq!(e.file, "/nonexistent/inventory.toml");
    assert!(e.problem.contains("cannot read"), "{e}");
}

fn csv<'a>(name: &'a str, text: &'a str) -> CsvFile<'a> {
    CsvFile {
        name,
        bytes: text.as_bytes(),
    }
}

/// The example CSVs convert to the example TOML's inventory (the CSV has no thresholds column).
#[test]
fn the_example_csv_imports_to_the_example_inventory() {
    let sites = example("inventory-sites.csv");
    let contacts = example("inventory-contacts.csv");
    let (text, imported) = import::convert(
        csv("sites.csv", &sites),
        Some(csv("contacts.csv", &contacts)),
    )
    .unwrap();
    let mut expected = parse(&example("inventory.toml"), "inventory.toml").unwrap();
    for site in expected.sites.values_mut() {
        site.thresholds = SiteThresholds::default();
    }
    assert_eq!(imported, expected);
    assert_eq!(parse(&text, "again.toml").unwrap(), imported);
}

#[test]
fn bom_semicolons_quotes_and_vietnamese_headers_are_read() {
    let sites = "\u{feff}Mã tỉnh;Tỉnh;Mã xã;Tên xã;Mã thôn;Tên thôn;Loại;Trạm cha;Vĩ độ;Kinh độ;Agent;Liên hệ\r\n\
        hue;Huế;phu-vinh;xã Phú Vinh;pv-ubnd;\"UBND xã Phú Vinh; \"\"trụ sở\"\"\";UBND;;16,5362;107,6415;hue-pv-ubnd;pv-it\r\n\
        hue;Huế;phu-vinh;xã Phú Vinh;pv-thon-1;\"thôn\nPhú Lộc, Đông\";thôn;pv-ubnd;16.54;107.65;\"hue-pv-1;hue-pv-1b\";\r\n";
    let contacts =
        "\u{feff}id;name;channel;to;lang\npv-it;\"Trần Minh Đức; CNTT\";Telegram;-100123;\n";
    let (text, inv) = import::convert(csv("s.csv", sites), Some(csv("c.csv", contacts))).unwrap();
    let ubnd = &inv.sites["pv-ubnd"];
    assert_eq!(ubnd.name, "UBND xã Phú Vinh; \"trụ sở\"");
    assert_eq!(ubnd.kind, SiteKind::CommuneCentre);
    assert_eq!((ubnd.lat, ubnd.lon), (Some(16.5362), Some(107.6415)));
    let village = &inv.sites["pv-thon-1"];
    assert_eq!(village.name, "thôn Phú Lộc, Đông");
    assert_eq!(village.parent.as_deref(), Some("pv-ubnd"));
    assert_eq!(village.agents.len(), 2);
    assert_eq!(inv.communes["phu-vinh"].name, "xã Phú Vinh");
    assert_eq!(inv.contacts["pv-it"].name, "Trần Minh Đức; CNTT");
    assert_eq!(inv.contacts["pv-it"].lang, "vi");
    // Line numbers count CRLF line ends and the line break inside a quoted cell.
    let bad = sites.replace("107.65", "đông");
    let e = import::convert(csv("s.csv", &bad), Some(csv("c.csv", contacts))).unwrap_err();
    assert_eq!(e.key, "line 3, column lon", "{e}");
    let bad = format!("{sites}hue;Huế;phu-vinh;xã Phú Vinh;pv-2;thôn 2;thôn;;;;hue-pv-1;\r\n");
    let e = import::convert(csv("s.csv", &bad), Some(csv("c.csv", contacts))).unwrap_err();
    assert_eq!(e.key, "line 5, column agents", "{e}");
    // Written by the toml crate: a name with double quotes becomes a literal string, and loads
    // back as it was (asserted above on `inv`).
    assert!(
        text.contains("name = 'UBND xã Phú Vinh; \"trụ sở\"'"),
        "{text}"
    );
    assert_eq!(parse(&text, "again.toml").unwrap(), inv);
}

#[test]
fn import_errors_name_the_csv_file_line_and_column() {
    let header = "province_id,province_name,commune_id,commune_name,site_id,site_name,kind,parent,lat,lon,agents,contacts\n";
    let row1 =
        "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,ubnd,UBND,commune_centre,,20.05,105.47,a-ubnd,\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,gt,\"thôn\nGiang Trung\",village,ubnd,north,105.48,a-gt,\n",
            "line 3, column lat",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,gt,Giang Trung,village,nowhere,20.06,105.48,a-gt,\n",
            "line 3, column parent",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,gt,Giang Trung,village,ubnd,20.06,105.48,a-ubnd,\n",
            "line 3, column agents",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,gt,Giang Trung,hamlet,ubnd,20.06,105.48,a-gt,\n",
            "line 3, column kind",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Thủy,gt,Giang Trung,village,ubnd,20.06,105.48,a-gt,\n",
            "line 3, column commune_name",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,,Giang Trung,village,ubnd,20.06,105.48,a-gt,\n",
            "line 3, column site_id",
            "s.csv",
        ),
        (
            "thanh-hoa,Thanh Hóa,cam-tu,xã Cẩm Tú,gt,Giang Trung,village,ubnd,20.06,105.48,a-gt,it\n",
            "line 2, column id",
            "c.csv",
        ),
    ];
    for (row, key, file) in cases {
        let sites = format!("{header}{row1}{row}");
        // The last case's contact id is bad; the others are fine.
        let contacts = if *file == "c.csv" {
            "id,name,channel,to\nit x,Hùng,telegram,1\n"
        } else {
            "id,name,channel,to\nit,Hùng,telegram,1\n"
        };
        let e = import::convert(csv("s.csv", &sites), Some(csv("c.csv", contacts))).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.key.as_str()),
            (*file, *key),
            "{row}: {e}"
        );
    }
    let e = import::convert(csv("s.csv", "site_id,site_name\nx,y\n"), None).unwrap_err();
    assert_eq!(e.key, "line 1, column province_id", "{e}");
    let e = import::convert(
        csv(
            "s.csv",
            &format!(
                "{header}{}",
                "thanh-hoa,Thanh H\u{f3}a,c,xa,s,\u{0}x,,,,,,\n"
            ),
        ),
        None,
    )
    .unwrap_err();
    assert_eq!(e.key, "line 2, column site_name", "{e}");
}

/// Names with quotes of both kinds, backslashes and control characters read back unchanged.
#[test]
fn the_written_toml_escapes_what_it_must() {
    use super::raw::{RawContact, RawInventory, RawProvince, to_toml};
    let name = "a \"b\" 'c' \\d\te\u{1}f đ";
    let raw = RawInventory {
        provinces: vec![RawProvince {
            id: "p".into(),
            name: name.into(),
            contacts: vec!["k".into()],
        }],
        contacts: vec![RawContact {
            id: "k".into(),
            name: name.into(),
            channel: "telegram".into(),
            to: "-100".into(),
            lang: None,
        }],
        ..RawInventory::default()
    };
    let text = to_toml(&raw, "s.csv", None).unwrap();
    assert!(
        text.starts_with("# netmon site inventory, made by"),
        "{text}"
    );
    // The loader refuses control characters in names, so read the raw file back.
    let back: RawInventory = toml::from_str(&text).unwrap();
    assert_eq!(back.provinces[0].name, name);
    assert_eq!(back.contacts[0].name, name);
    assert_eq!(back.contacts[0].lang, None);
}
