//! Bytes as a retained `status` or `ack` message: `AgentStatus::from_json` and `Ack::from_json`
//! never panic; what they accept encodes and decodes to the same value, an ack never lists more
//! than `MAX_ACK_BOOTS` boots, and its `seq_for` finds each listed boot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netmon_events::{Ack, AgentStatus, MAX_ACK_BOOTS};

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = AgentStatus::from_json(data) {
        let again = AgentStatus::from_json(&status.to_json()).expect("an encoded status decodes");
        assert_eq!(again, status);
    }
    if let Ok(ack) = Ack::from_json(data) {
        assert!(ack.acks.len() <= MAX_ACK_BOOTS);
        let again = Ack::from_json(&ack.to_json()).expect("an encoded ack decodes");
        assert_eq!(again, ack);
        for boot in &ack.acks {
            assert!(ack.seq_for(&boot.boot).is_some());
        }
    }
});
