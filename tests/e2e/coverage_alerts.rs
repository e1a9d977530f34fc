//! The `coverage_lost` alert end to end: a collector with an inventory and a webhook contact,
//! two village agents played through the real broker as they would publish (one modem reading
//! a second each, at real time), short thresholds. Thôn Giang Trung's Viettel modem goes from
//! `nr5g_nsa` to no service until the collector says so, then back: exactly one Vietnamese
//! message naming the village and the operator, then one recovery. Thôn Trung Sơn's modem dips
//! for 2 s, under the threshold: nothing.

use std::time::{Duration, Instant};

use chrono::Utc;
use netmon_events::{Envelope, Event, Quality, Registration, Signal, Technology, encode_batch};
use netmon_tests::{
    Collector, CollectorConfig, Scratch, WebhookReceiver, publish, shared_url, unique,
};

use netmon_events::testing::{Boot, events_topic, started};

const SECRET: &str = "khóa-bí-mật-cẩm-tú";

fn reading(technology: Technology) -> Event {
    let service = technology != Technology::None;
    Event::CellularSignalSampled {
        modem: "viettel".into(),
        signal: Signal {
            technology,
            plmn: service.then(|| "452-04".into()),
            operator: service.then(|| "Viettel".into()),
            registration: if service {
                Registration::Home
            } else {
                Registration::Searching
            },
            rsrp_dbm: service.then_some(-95.0),
            nr_rsrp_dbm: technology.is_5g().then_some(-88.0),
            band: service.then(|| "B3+n41".into()),
            ..Signal::default()
        },
        quality: if service {
            Quality::Good
        } else {
            Quality::NoService
        },
    }
}

/// The next envelope of `boot`, stamped now (an agent reading in real time).
fn now(boot: &mut Boot, event: Event, started: Instant) -> Envelope {
    let mut envelope = boot.next(event);
    envelope.time = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    envelope.mono_ms = 1000 + started.elapsed().as_millis() as u64;
    envelope
}

#[test]
fn coverage_alerts_a_lost_modem_is_one_vietnamese_message_and_a_short_dip_none() {
    let scratch = Scratch::new("coverage-alerts").unwrap();
    let province = unique("coverage");
    let (giang_trung, trung_son) = (unique("giang-trung"), unique("trung-son"));
    let hook = WebhookReceiver::start(SECRET).unwrap();
    let inventory = format!(
        "[[provinces]]\nid = \"{province}\"\nname = \"Thanh Hóa\"\n\n\
         [[communes]]\nid = \"cam-tu\"\nprovince = \"{province}\"\nname = \"xã Cẩm Tú\"\ncontacts = [\"it\"]\n\n\
         [[sites]]\nid = \"giang-trung\"\ncommune = \"cam-tu\"\nname = \"thôn Giang Trung\"\nkind = \"village\"\nagents = [\"{giang_trung}\"]\n\n\
         [[sites]]\nid = \"trung-son\"\ncommune = \"cam-tu\"\nname = \"thôn Trung Sơn\"\nkind = \"village\"\nagents = [\"{trung_son}\"]\n\n\
         [[contacts]]\nid = \"it\"\nname = \"CNTT xã Cẩm Tú\"\nchannel = \"webhook\"\nto = \"{}\"\n",
        hook.url()
    );
    let inventory = scratch.write("inventory.toml", inventory).unwrap();
    let config = CollectorConfig {
        province: Some(province.clone()),
        inventory: Some(inventory.display().to_string()),
        extra_toml: format!(
            "[alerts]\ngroup_window = \"1s\"\nreminder_every = \"0s\"\n\n\
             [alerts.coverage]\nno_service_after = \"5s\"\nlost_5g_after = \"1h\"\nclear_after = \"2s\"\n\n\
             [notify.webhook]\nsecret = \"{SECRET}\"\n"
        ),
        ..CollectorConfig::on_loopback(&shared_url(), &scratch.join("events.db")).unwrap()
    };
    let mut collector = Collector::start("collector", config, &scratch, None).unwrap();
    collector
        .wait_subscribed(&province, Duration::from_secs(20))
        .unwrap();

    let url = shared_url();
    let clock = Instant::now();
    let mut agents = [
        (
            events_topic(&province, &giang_trung),
            Boot::new(&giang_trung),
        ),
        (events_topic(&province, &trung_son), Boot::new(&trung_son)),
    ];
    for (topic, boot) in &mut agents {
        let first = now(boot, started(), clock);
        publish(&url, topic, &encode_batch(&[first])).unwrap();
    }
    // One reading a second per agent, as the agents would (the pacing is the agents' interval,
    // not a wait for the collector): Giang Trung loses service at second 3 and gets it back once
    // the opening has been delivered; Trung Sơn dips for seconds 3..=5 only.
    let mut lost_at = None;
    let mut opened_after = None;
    let mut back_at: Option<u32> = None;
    for second in 0..60u32 {
        let delivered = hook.deliveries().len();
        if delivered >= 2 {
            break;
        }
        if delivered == 1 && opened_after.is_none() {
            opened_after = lost_at.map(|t: Instant| t.elapsed());
            back_at = Some(second);
        }
        let giang = match (second, back_at) {
            (0..3, _) => Technology::Nr5gNsa,
            (_, None) => Technology::None,
            (_, Some(_)) => Technology::Nr5gNsa,
        };
        let trung = if (3..=5).contains(&second) {
            Technology::None
        } else {
            Technology::Nr5gNsa
        };
        if second == 3 {
            lost_at = Some(Instant::now());
        }
        for ((topic, boot), technology) in agents.iter_mut().zip([giang, trung]) {
            let envelope = now(boot, reading(technology), clock);
            publish(&url, topic, &encode_batch(&[envelope])).unwrap();
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let deliveries = hook.deliveries();
    let texts: Vec<String> = deliveries
        .iter()
        .map(|d| {
            let json = d.json.as_ref().unwrap();
            format!(
                "{}\n{}",
                json["subject"].as_str().unwrap(),
                json["text"].as_str().unwrap()
            )
        })
        .collect();
    eprintln!("{texts:#?}");
    assert_eq!(deliveries.len(), 2, "one opening, one recovery: {texts:#?}");
    assert!(deliveries.iter().all(|d| d.signature_ok));
    let opened = &texts[0];
    for expected in [
        "Mất sóng di động hoàn toàn — thôn Giang Trung",
        "MẤT SÓNG DI ĐỘNG HOÀN TOÀN — thôn Giang Trung (xã Cẩm Tú, Thanh Hóa)",
        "modem viettel (Viettel)",
    ] {
        assert!(opened.contains(expected), "{expected:?} in {opened}");
    }
    assert!(
        texts[1].contains("ĐÃ KHÔI PHỤC — thôn Giang Trung"),
        "{}",
        texts[1]
    );
    assert!(texts.iter().all(|t| !t.contains("Trung Sơn")), "{texts:#?}");

    let alerts = collector.get_json("/api/v1/alerts").unwrap();
    let coverage: Vec<_> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "coverage_lost")
        .collect();
    assert_eq!(coverage.len(), 1, "{coverage:#?}");
    assert_eq!(coverage[0]["agent"], giang_trung.as_str());
    assert_eq!(coverage[0]["subject"], "viettel (Viettel)");
    assert_eq!(coverage[0]["open"], false);
    let opened_after = opened_after.unwrap();
    eprintln!(
        "no service → notification: {:.1} s (threshold 5 s); back at second {}",
        opened_after.as_secs_f64(),
        back_at.unwrap()
    );
    assert!(opened_after >= Duration::from_secs(4), "{opened_after:?}");
}
