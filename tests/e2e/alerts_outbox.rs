//! The outbox across restarts: notifications queued while the receiver is down are retried,
//! survive a collector restart and a crash, and each reaches the receiver exactly once.

use std::time::Duration;

use netmon_events::encode_batch;
use netmon_tests::wait::quiet;
use netmon_tests::{
    Collector, CollectorConfig, Scratch, WebhookReceiver, publish, shared_url, unique, wait_for,
};

use netmon_events::testing::{Boot, came_back, events_topic, round, started, target, went_down};

const SECRET: &str = "khóa-bí-mật-kiên-thọ";
/// After the last delivery and two restarts: how long the test watches for a resend. Longer
/// than the first retry's 5 s; a quiet window after the awaited event, not a synchronisation.
const QUIET_FOR_RESENDS: Duration = Duration::from_secs(8);

#[test]
fn alerts_pending_notifications_survive_restarts_and_go_out_once() {
    let scratch = Scratch::new("alerts-outbox").unwrap();
    let province = unique("outbox");
    let agent = unique("kien-tho");
    let hook = WebhookReceiver::start(SECRET).unwrap();
    hook.set_down(true);
    let inventory = format!(
        "[[provinces]]\nid = \"{province}\"\nname = \"Thanh Hóa\"\n\n\
         [[communes]]\nid = \"kien-tho\"\nprovince = \"{province}\"\nname = \"xã Kiên Thọ\"\ncontacts = [\"it\"]\n\n\
         [[sites]]\nid = \"tho-lien\"\ncommune = \"kien-tho\"\nname = \"thôn Thọ Liên\"\nkind = \"village\"\nagents = [\"{agent}\"]\n\n\
         [[contacts]]\nid = \"it\"\nname = \"CNTT xã Kiên Thọ\"\nchannel = \"webhook\"\nto = \"{}\"\n",
        hook.url()
    );
    let inventory = scratch.write("inventory.toml", inventory).unwrap();
    let config = CollectorConfig {
        province: Some(province.clone()),
        inventory: Some(inventory.display().to_string()),
        extra_toml: format!(
            "[alerts]\ngroup_window = \"1s\"\n\n[notify.webhook]\nsecret = \"{SECRET}\"\ntimeout = \"2s\"\n"
        ),
        ..CollectorConfig::on_loopback(&shared_url(), &scratch.join("events.db")).unwrap()
    };
    let mut collector = Collector::start("collector", config, &scratch, None).unwrap();
    collector
        .wait_subscribed(&province, Duration::from_secs(20))
        .unwrap();

    let url = shared_url();
    let topic = events_topic(&province, &agent);
    let link = target("Trạm Y tế xã Kiên Thọ", "10.20.0.9");
    let mut boot = Boot::new(&agent);
    let since = boot.time();
    let batch = [
        boot.next(started()),
        boot.next(round(&link, 3)),
        boot.next(went_down(&link, since)),
    ];
    publish(&url, &topic, &encode_batch(&batch)).unwrap();

    // The receiver is down: the notification is queued and fails, to be retried.
    let outbox = |c: &Collector| c.get_json("/api/v1/alerts").unwrap()["outbox"].clone();
    wait_for("a failed attempt", Duration::from_secs(30), || {
        let o = outbox(&collector);
        (o[0]["attempts"].as_u64()? >= 1).then_some(())
    });
    collector.restart("collector", &scratch).unwrap();
    assert_eq!(
        outbox(&collector).as_array().unwrap().len(),
        1,
        "still pending after a restart"
    );
    collector.kill_and_restart("collector", &scratch).unwrap();
    assert_eq!(
        outbox(&collector).as_array().unwrap().len(),
        1,
        "still pending after a crash"
    );

    hook.set_down(false);
    let delivered = hook.wait_for(1, Duration::from_secs(60));
    assert!(delivered[0].signature_ok);
    let text = delivered[0].json.as_ref().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("thôn Thọ Liên") && text.contains("Trạm Y tế xã Kiên Thọ"),
        "{text}"
    );

    // The recovery, then restarts: nothing is sent again.
    let back = boot.next(came_back(&link, since, 20_000));
    publish(&url, &topic, &encode_batch(&[back])).unwrap();
    hook.wait_for(2, Duration::from_secs(30));
    collector.restart("collector", &scratch).unwrap();
    collector.kill_and_restart("collector", &scratch).unwrap();
    // A named quiet window, longer than the first retry's 5 s: any resend would show in it.
    quiet(QUIET_FOR_RESENDS, || {
        (hook.deliveries().len() > 2).then_some(())
    });
    let deliveries = hook.deliveries();
    let ids: Vec<_> = deliveries.iter().map(|d| d.notification.clone()).collect();
    eprintln!("delivered: {ids:?}");
    assert_eq!(
        deliveries.len(),
        2,
        "each notification exactly once: {ids:?}"
    );
    assert_ne!(ids[0], ids[1]);
    assert!(outbox(&collector).as_array().unwrap().is_empty());
}
