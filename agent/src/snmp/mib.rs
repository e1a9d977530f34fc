//! What the poller reads from a device, and how the varbinds of a walk become a [`Snapshot`]
//! (pure). The objects are those of the system group (`sysUpTime`, `sysName`) and the IF-MIB's
//! ifTable and ifXTable columns listed in [`COLUMNS`]; a value of the wrong type, a row index
//! that is not a `u32` or an object the poller did not ask for is ignored, never a panic.

use std::collections::BTreeMap;

/// `sysUpTime.0` (TimeTicks, hundredths of a second since the SNMP agent started).
pub const SYS_UPTIME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// `sysName.0`.
pub const SYS_NAME: [u64; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];

/// `ifEntry` (ifTable, RFC 2863).
const IF_ENTRY: [u64; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
/// `ifXEntry` (ifXTable, RFC 2863).
const IFX_ENTRY: [u64; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

/// One column of the interface tables the poller walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Descr,
    Speed,
    OperStatus,
    InOctets,
    InDiscards,
    InErrors,
    OutOctets,
    OutDiscards,
    OutErrors,
    Name,
    HcInOctets,
    HcOutOctets,
    HighSpeed,
    Alias,
}

/// Every column walked, in request order.
pub const COLUMNS: [Column; 14] = [
    Column::Name,
    Column::Alias,
    Column::HcInOctets,
    Column::HcOutOctets,
    Column::HighSpeed,
    Column::Descr,
    Column::Speed,
    Column::OperStatus,
    Column::InOctets,
    Column::OutOctets,
    Column::InErrors,
    Column::OutErrors,
    Column::InDiscards,
    Column::OutDiscards,
];

impl Column {
    /// The column's OID (the table entry plus the column number); rows are `oid.ifIndex`.
    pub fn oid(self) -> Vec<u64> {
        let (entry, column): (&[u64], u64) = match self {
            Column::Descr => (&IF_ENTRY, 2),
            Column::Speed => (&IF_ENTRY, 5),
            Column::OperStatus => (&IF_ENTRY, 8),
            Column::InOctets => (&IF_ENTRY, 10),
            Column::InDiscards => (&IF_ENTRY, 13),
            Column::InErrors => (&IF_ENTRY, 14),
            Column::OutOctets => (&IF_ENTRY, 16),
            Column::OutDiscards => (&IF_ENTRY, 19),
            Column::OutErrors => (&IF_ENTRY, 20),
            Column::Name => (&IFX_ENTRY, 1),
            Column::HcInOctets => (&IFX_ENTRY, 6),
            Column::HcOutOctets => (&IFX_ENTRY, 10),
            Column::HighSpeed => (&IFX_ENTRY, 15),
            Column::Alias => (&IFX_ENTRY, 18),
        };
        let mut oid = entry.to_vec();
        oid.push(column);
        oid
    }

    /// The `ifIndex` of `oid` when it is a row of this column.
    pub fn row_of(self, oid: &[u64]) -> Option<u32> {
        let prefix = self.oid();
        match oid.strip_prefix(prefix.as_slice()) {
            Some([index]) => u32::try_from(*index).ok(),
            _ => None,
        }
    }
}

/// A value as read from the wire, owned (the I/O edge copies it out of the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Text(Vec<u8>),
    Counter32(u32),
    Counter64(u64),
    /// Gauge32/Unsigned32.
    Gauge(u32),
    Ticks(u32),
    /// noSuchObject, noSuchInstance, endOfMibView, NULL or a type the poller has no use for.
    Missing,
}

/// A counter as the device reported it: its width decides how it wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    C32(u32),
    C64(u64),
}

/// One interface as read in one poll. Absent columns stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub descr: Option<String>,
    pub name: Option<String>,
    pub alias: Option<String>,
    /// ifSpeed in bit/s (saturates at 4,294,967,295 on fast links).
    pub speed: Option<u32>,
    /// ifHighSpeed in Mbit/s.
    pub high_speed: Option<u32>,
    pub oper_status: Option<i64>,
    pub in_octets: Option<Counter>,
    pub out_octets: Option<Counter>,
    pub hc_in_octets: Option<Counter>,
    pub hc_out_octets: Option<Counter>,
    pub in_errors: Option<Counter>,
    pub out_errors: Option<Counter>,
    pub in_discards: Option<Counter>,
    pub out_discards: Option<Counter>,
}

impl Row {
    /// The interface's name: `ifName`, else `ifDescr`, else `if<index>`.
    pub fn display_name(&self, index: u32) -> String {
        self.name
            .clone()
            .or_else(|| self.descr.clone())
            .unwrap_or_else(|| format!("if{index}"))
    }

    /// Octet counters: the 64-bit ones when the device has them, else the 32-bit ones.
    pub fn octets(&self) -> (Option<Counter>, Option<Counter>) {
        match (self.hc_in_octets, self.hc_out_octets) {
            (Some(i), Some(o)) => (Some(i), Some(o)),
            _ => (self.in_octets, self.out_octets),
        }
    }

    /// The speed the device reports, in bit/s: `ifHighSpeed` when set, else `ifSpeed`.
    pub fn reported_speed_bps(&self) -> Option<u64> {
        match (self.high_speed, self.speed) {
            (Some(mbit), _) if mbit > 0 => Some(u64::from(mbit) * 1_000_000),
            (_, Some(bps)) if bps > 0 => Some(u64::from(bps)),
            _ => None,
        }
    }
}

/// Everything one poll read from a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// sysUpTime in hundredths of a second.
    pub uptime_ticks: Option<u32>,
    pub sys_name: Option<String>,
    /// Rows by ifIndex.
    pub interfaces: BTreeMap<u32, Row>,
}

impl Snapshot {
    /// Files one varbind of the system group (a `get`).
    pub fn put_scalar(&mut self, oid: &[u64], value: Value) {
        if oid == SYS_UPTIME {
            if let Value::Ticks(t) = value {
                self.uptime_ticks = Some(t);
            }
        } else if oid == SYS_NAME
            && let Value::Text(bytes) = value
        {
            self.sys_name = text(&bytes);
        }
    }

    /// Files one varbind of `column` (a walk). Returns false when `oid` is not a row of it.
    pub fn put(&mut self, column: Column, oid: &[u64], value: Value) -> bool {
        let Some(index) = column.row_of(oid) else {
            return false;
        };
        if value == Value::Missing {
            return true;
        }
        let row = self.interfaces.entry(index).or_default();
        match (column, value) {
            (Column::Descr, Value::Text(b)) => row.descr = text(&b),
            (Column::Name, Value::Text(b)) => row.name = text(&b),
            (Column::Alias, Value::Text(b)) => row.alias = text(&b),
            (Column::Speed, Value::Gauge(n)) => row.speed = Some(n),
            (Column::HighSpeed, Value::Gauge(n)) => row.high_speed = Some(n),
            (Column::OperStatus, Value::Integer(n)) => row.oper_status = Some(n),
            (column, Value::Counter32(n)) => set_counter(row, column, Counter::C32(n)),
            (column, Value::Counter64(n)) => set_counter(row, column, Counter::C64(n)),
            _ => {}
        }
        true
    }
}

/// Files a counter; a counter answered for a text or gauge column (a confused device) is dropped.
fn set_counter(row: &mut Row, column: Column, value: Counter) {
    let slot = match column {
        Column::InOctets => &mut row.in_octets,
        Column::OutOctets => &mut row.out_octets,
        Column::HcInOctets => &mut row.hc_in_octets,
        Column::HcOutOctets => &mut row.hc_out_octets,
        Column::InErrors => &mut row.in_errors,
        Column::OutErrors => &mut row.out_errors,
        Column::InDiscards => &mut row.in_discards,
        Column::OutDiscards => &mut row.out_discards,
        _ => return,
    };
    *slot = Some(value);
}

/// Printable text from an OCTET STRING: lossy UTF-8, control characters dropped, trimmed, at
/// most 256 bytes; `None` when nothing is left.
pub fn text(bytes: &[u8]) -> Option<String> {
    let cleaned: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let mut cleaned = cleaned.trim().to_owned();
    if cleaned.len() > netmon_events::envelope::MAX_NAME_LEN {
        let mut cut = netmon_events::envelope::MAX_NAME_LEN;
        while !cleaned.is_char_boundary(cut) {
            cut -= 1;
        }
        cleaned.truncate(cut);
    }
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_oid(column: Column, index: u64) -> Vec<u64> {
        let mut oid = column.oid();
        oid.push(index);
        oid
    }

    #[test]
    fn varbinds_fill_rows_and_ignore_strangers() {
        let mut s = Snapshot::default();
        assert!(s.put(
            Column::Name,
            &row_oid(Column::Name, 2),
            Value::Text(b"eth0".to_vec())
        ));
        assert!(s.put(
            Column::HcInOctets,
            &row_oid(Column::HcInOctets, 2),
            Value::Counter64(7)
        ));
        assert!(s.put(
            Column::OperStatus,
            &row_oid(Column::OperStatus, 2),
            Value::Integer(1)
        ));
        // A row of another column, an index too large, a sub-row: not ours.
        assert!(!s.put(Column::Name, &row_oid(Column::Alias, 3), Value::Missing));
        assert!(!s.put(
            Column::Name,
            &row_oid(Column::Name, 1 << 40),
            Value::Missing
        ));
        let mut deep = row_oid(Column::Name, 3);
        deep.push(1);
        assert!(!s.put(Column::Name, &deep, Value::Missing));
        // A wrong type is dropped.
        s.put(Column::Name, &row_oid(Column::Name, 4), Value::Counter32(1));
        s.put_scalar(&SYS_UPTIME, Value::Ticks(12345));
        s.put_scalar(&SYS_NAME, Value::Text(b"  r\x01outer \n".to_vec()));
        assert_eq!(s.uptime_ticks, Some(12345));
        assert_eq!(s.sys_name.as_deref(), Some("router"));
        let row = &s.interfaces[&2];
        assert_eq!(row.name.as_deref(), Some("eth0"));
        assert_eq!(row.oper_status, Some(1));
        assert_eq!(
            row.octets().0,
            None,
            "no HC out: fall back to 32-bit (absent)"
        );
        assert_eq!(s.interfaces[&4].name, None);
    }

    #[test]
    fn names_and_speeds_fall_back() {
        let row = Row {
            descr: Some("eth1".into()),
            speed: Some(100_000_000),
            high_speed: Some(0),
            ..Row::default()
        };
        assert_eq!(row.display_name(3), "eth1");
        assert_eq!(row.reported_speed_bps(), Some(100_000_000));
        assert_eq!(Row::default().display_name(9), "if9");
        let fast = Row {
            speed: Some(u32::MAX),
            high_speed: Some(10_000),
            ..Row::default()
        };
        assert_eq!(fast.reported_speed_bps(), Some(10_000_000_000));
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(text(b""), None);
        assert_eq!(
            text("Cáp quang VNPT".as_bytes()).as_deref(),
            Some("Cáp quang VNPT")
        );
        let long = "ả".repeat(200);
        let cut = text(long.as_bytes()).unwrap_or_default();
        assert!(cut.len() <= 256 && cut.starts_with('ả'));
        assert_eq!(text(&[0xff, b'a']).as_deref(), Some("\u{fffd}a"));
    }
}
