//! The session's outgoing side: what one write holds, which acks reach the broker, and what a
//! reconnect sends again. Decoded with the same codec the broker's bytes are read with.

#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use rumqttc::{Packet, QoS, SubscribeFilter};

use super::link::read_packet;
use super::outgoing::{Encoded, Full, Outgoing};

fn packets(outgoing: &mut Outgoing) -> (Encoded, Vec<Packet>) {
    let mut buffer = BytesMut::new();
    let encoded = outgoing.encode(&mut buffer);
    let mut out = Vec::new();
    while let Some(packet) = read_packet(&mut buffer, 1 << 20).unwrap() {
        out.push(packet);
    }
    assert!(buffer.is_empty(), "a partial packet was written");
    (encoded, out)
}

fn pubacks(packets: &[Packet]) -> Vec<u16> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(ack) => Some(ack.pkid),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_of_acks_goes_out_in_one_write_in_the_order_received() {
    let mut out = Outgoing::new(16);
    let connection = out.connected(true, None);
    for pkid in [7, 3, 9, 1] {
        out.received(connection, pkid);
    }
    for pkid in [7, 3, 9, 1] {
        assert!(out.ack(pkid));
    }
    let (encoded, written) = packets(&mut out);
    assert_eq!(encoded.acks, 4);
    assert_eq!(pubacks(&written), vec![7, 3, 9, 1]);
    assert!(!out.pending());
    assert_eq!(out.unacknowledged(), 0);
}

#[test]
fn acks_of_an_earlier_connection_are_dropped_even_when_the_id_is_reused() {
    let mut out = Outgoing::new(16);
    let first = out.connected(true, None);
    out.received(first, 5);
    out.received(first, 6);
    assert!(out.ack(5));
    // The connection drops before the writer acks 6 and before 5's PUBACK is written.
    let second = out.connected(true, None);
    // The broker reuses 6 for a new message on the new connection.
    out.received(second, 6);
    // The writer's ack for the old 6 must not acknowledge the new one (not stored yet).
    assert!(!out.ack(6));
    let (_, written) = packets(&mut out);
    assert_eq!(pubacks(&written), Vec::<u16>::new());
    // Once stored, the new 6 is acknowledged.
    assert!(out.ack(6));
    let (_, written) = packets(&mut out);
    assert_eq!(pubacks(&written), vec![6]);
    assert_eq!(out.stale_acks, 2);
    assert_eq!(out.unmatched_acks, 0);
}

#[test]
fn an_ack_out_of_order_skips_the_messages_before_it_and_counts_them() {
    let mut out = Outgoing::new(16);
    let connection = out.connected(true, None);
    for pkid in 1..=3 {
        out.received(connection, pkid);
    }
    assert!(out.ack(3));
    assert!(!out.ack(42));
    assert_eq!(out.unmatched_acks, 3);
    assert_eq!(out.unacknowledged(), 0);
}

#[test]
fn publishes_get_free_ids_stay_in_flight_and_are_sent_again_marked_duplicate() {
    let mut out = Outgoing::new(3);
    out.connected(true, None);
    for agent in ["a", "b", "c"] {
        out.publish(
            format!("netmon/v1/p/{agent}/ack"),
            Bytes::from_static(b"{}"),
            true,
        )
        .unwrap();
    }
    assert_eq!(
        out.publish("x".into(), Bytes::new(), true),
        Err(Full),
        "the window holds 3"
    );
    let (encoded, written) = packets(&mut out);
    assert_eq!(encoded.publishes, 3);
    let ids: Vec<u16> = written
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => {
                assert!(p.retain && p.qos == QoS::AtLeastOnce && !p.dup);
                p.pkid
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(out.puback(2));
    assert!(!out.puback(2));
    // A new publish takes a free id, never one still in flight.
    out.publish("d".into(), Bytes::new(), true).unwrap();
    let (_, written) = packets(&mut out);
    assert!(matches!(&written[..], [Packet::Publish(p)] if p.pkid == 4));
    // After a reconnect with the session kept, 1, 3 and 4 go again as duplicates, first.
    let subscribe = vec![SubscribeFilter::new("f".into(), QoS::AtLeastOnce)];
    out.connected(true, Some(subscribe));
    out.ping();
    let (_, written) = packets(&mut out);
    let kinds: Vec<String> = written
        .iter()
        .map(|p| match p {
            Packet::Subscribe(s) => format!("sub {}", s.pkid),
            Packet::Publish(p) => format!("pub {} dup {}", p.pkid, p.dup),
            Packet::PingReq => "ping".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "sub 5",
            "pub 1 dup true",
            "pub 3 dup true",
            "pub 4 dup true",
            "ping"
        ]
    );
    assert!(out.suback(5));
}

#[test]
fn a_disconnect_goes_after_everything_pending() {
    let mut out = Outgoing::new(4);
    let connection = out.connected(false, None);
    out.received(connection, 11);
    out.disconnect();
    assert!(out.ack(11));
    let (encoded, written) = packets(&mut out);
    assert!(encoded.disconnect);
    assert!(matches!(
        &written[..],
        [Packet::PubAck(a), Packet::Disconnect] if a.pkid == 11
    ));
}
