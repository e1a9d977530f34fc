//! The I/O edge of the SNMP poller: one [`Client`] per device wraps an `snmp2` session and reads
//! a [`Snapshot`] — `sysUpTime` and `sysName` with one GET, then the interface columns of
//! [`COLUMNS`] walked together with GetBulk (GetNext, one column at a time, for SNMPv1).
//!
//! snmp2's async session has no timeout of its own and, after a request is abandoned, its reply
//! may still arrive and be read by the next request (snmp2 0.5 rejects it as a request-id
//! mismatch; older versions returned it). So every request runs under `tokio::time::timeout`,
//! and after a timeout or any error the session is dropped and the next attempt opens a new one
//! (a new socket: a stale reply has nowhere to land). A request is tried `1 + retries` times,
//! waiting 250 ms, 500 ms, … between attempts. A walk must make progress (every OID greater than
//! the one before it) and ends within a bounded number of requests, so a device answering in
//! circles cannot hold the poller.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use netmon_mqtt::Backoff;
use snmp2::{AsyncSession, Oid};

use crate::config::{SnmpConfig, SnmpCredentials, SnmpDevice, SnmpVersion};
use crate::snmp::mib::{COLUMNS, Column, SYS_NAME, SYS_UPTIME, Snapshot, Value};

/// Most rows walked per column (a bound on a misbehaving device, far above any router).
const MAX_ROWS: usize = 4096;
/// The waits between the attempts of one request: 250 ms doubling to 4 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));

/// `noSuchName` (v1): the end of the MIB for GetNext.
const NO_SUCH_NAME: u32 = 2;

/// A request's failure.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Snmp(snmp2::Error),
    #[error("the device answered error-status {status} (error-index {index})")]
    Status { status: u32, index: u32 },
}

enum Request {
    Get(Vec<Vec<u64>>),
    Bulk(Vec<Vec<u64>>, u32),
    Next(Vec<u64>),
}

/// Varbinds copied out of a response.
type Varbinds = Vec<(Vec<u64>, Value)>;

/// A device's SNMP client: settings and, between requests, an open session.
pub struct Client {
    device: SnmpDevice,
    timeout: Duration,
    retries: u32,
    max_repetitions: u32,
    session: Option<AsyncSession>,
    next_request_id: i32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("device", &self.device.address)
            .field("open", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(device: &SnmpDevice, settings: &SnmpConfig) -> Client {
        Client {
            device: device.clone(),
            timeout: settings.timeout,
            retries: settings.retries,
            max_repetitions: settings.max_repetitions,
            session: None,
            next_request_id: rand_start(device.socket),
        }
    }

    /// Reads everything the poller needs from the device.
    pub async fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        for (oid, value) in self
            .request(&Request::Get(vec![SYS_UPTIME.to_vec(), SYS_NAME.to_vec()]))
            .await
            .context("reading sysUpTime and sysName")?
        {
            snapshot.put_scalar(&oid, value);
        }
        if snapshot.uptime_ticks.is_none() {
            bail!("the device does not report sysUpTime");
        }
        if self.device.version == SnmpVersion::V1 {
            for column in COLUMNS {
                self.walk_next(column, &mut snapshot).await?;
            }
        } else {
            self.walk_bulk(&mut snapshot).await?;
        }
        Ok(snapshot)
    }

    /// Walks every column at once with GetBulk.
    async fn walk_bulk(&mut self, snapshot: &mut Snapshot) -> anyhow::Result<()> {
        let mut cursors: Vec<(Column, Vec<u64>)> = COLUMNS.iter().map(|c| (*c, c.oid())).collect();
        let max_requests = MAX_ROWS / self.max_repetitions as usize + 2;
        for _ in 0..max_requests {
            if cursors.is_empty() {
                return Ok(());
            }
            let oids = cursors.iter().map(|(_, oid)| oid.clone()).collect();
            let varbinds = self
                .request(&Request::Bulk(oids, self.max_repetitions))
                .await
                .context("walking the interface tables (GetBulk)")?;
            if varbinds.is_empty() {
                bail!("the device answered GetBulk with no varbinds");
            }
            let width = cursors.len();
            let mut done = vec![false; width];
            for (i, (oid, value)) in varbinds.into_iter().enumerate() {
                let k = i % width;
                if done[k] {
                    continue;
                }
                let (column, last) = &mut cursors[k];
                // Past the column, endOfMibView (echoes the OID asked for), or no progress.
                if oid <= *last || !snapshot.put(*column, &oid, value) {
                    done[k] = true;
                } else {
                    *last = oid;
                }
            }
            // A column the response did not reach (a short answer) is asked for again.
            let mut done = done.into_iter();
            cursors.retain(|_| !done.next().unwrap_or(true));
        }
        bail!("the interface tables did not end after {MAX_ROWS} rows")
    }

    /// Walks one column with GetNext (SNMPv1 has no GetBulk).
    async fn walk_next(&mut self, column: Column, snapshot: &mut Snapshot) -> anyhow::Result<()> {
        let mut last = column.oid();
        for _ in 0..=MAX_ROWS {
            let varbinds = match self.request(&Request::Next(last.clone())).await {
                Ok(varbinds) => varbinds,
                Err(e)
                    if e.downcast_ref::<CallError>().is_some_and(|e| {
                        matches!(e, CallError::Status { status, .. } if *status == NO_SUCH_NAME)
                    }) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e.context("walking the interface tables (GetNext)")),
            };
            let Some((oid, value)) = varbinds.into_iter().next() else {
                return Ok(());
            };
            if oid <= last || !snapshot.put(column, &oid, value) {
                return Ok(());
            }
            last = oid;
        }
        bail!("the interface tables did not end after {MAX_ROWS} rows")
    }

    /// One request with timeout, fresh sessions after failures, and retries with back-off.
    async fn request(&mut self, request: &Request) -> anyhow::Result<Varbinds> {
        let attempts = self.retries + 1;
        let mut last_error = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(RETRY.nth(attempt - 1)).await;
            }
            let session = match &mut self.session {
                Some(session) => session,
                slot @ None => match tokio::time::timeout(
                    self.timeout,
                    open(&self.device, self.next_request_id),
                )
                .await
                {
                    Ok(Ok(session)) => slot.insert(session),
                    Ok(Err(e)) => {
                        last_error = Some(e);
                        continue;
                    }
                    Err(_) => {
                        last_error = Some(no_answer(self.timeout));
                        continue;
                    }
                },
            };
            // A new session starts further on, so ids are never reused across sessions.
            self.next_request_id = self.next_request_id.wrapping_add(1000);
            // v3: a report that updates the engine's boots/time asks for the request again.
            let mut result = tokio::time::timeout(self.timeout, call(session, request)).await;
            if matches!(&result, Ok(Err(CallError::Snmp(e))) if is_auth_updated(e)) {
                result = tokio::time::timeout(self.timeout, call(session, request)).await;
            }
            match result {
                Ok(Ok(varbinds)) => return Ok(varbinds),
                Ok(Err(e @ CallError::Status { .. })) => return Err(e.into()),
                Ok(Err(CallError::Snmp(e))) => {
                    self.session = None;
                    let permanent = is_undecodable(&e);
                    let error = anyhow!(describe(&e));
                    if permanent {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
                Err(_) => {
                    self.session = None;
                    last_error = Some(no_answer(self.timeout));
                }
            }
        }
        let error = last_error.unwrap_or_else(|| no_answer(self.timeout));
        Err(error.context(format!("{} attempt(s) to {}", attempts, self.device.socket)))
    }
}

fn no_answer(timeout: Duration) -> anyhow::Error {
    anyhow!(
        "no answer within {} (wrong community or user, no SNMP agent, or the device is unreachable)",
        humantime::format_duration(timeout)
    )
}

#[cfg(feature = "snmp-v3")]
fn is_auth_updated(e: &snmp2::Error) -> bool {
    *e == snmp2::Error::AuthUpdated
}

#[cfg(not(feature = "snmp-v3"))]
fn is_auth_updated(_: &snmp2::Error) -> bool {
    false
}

/// Answers that are not SNMP at all: trying again will not help.
fn is_undecodable(e: &snmp2::Error) -> bool {
    matches!(
        e,
        snmp2::Error::AsnParse
            | snmp2::Error::AsnInvalidLen
            | snmp2::Error::AsnWrongType
            | snmp2::Error::AsnUnsupportedType
            | snmp2::Error::AsnEof
            | snmp2::Error::AsnIntOverflow
            | snmp2::Error::UnsupportedVersion
    )
}

fn describe(e: &snmp2::Error) -> String {
    match e {
        e if is_undecodable(e) => format!("the answer is not a valid SNMP message ({e})"),
        // A connected UDP socket reads ICMP port/host unreachable as a receive error.
        snmp2::Error::Receive => {
            "refused: nothing listens on that port or the host is unreachable (ICMP unreachable)"
                .into()
        }
        e => format!("SNMP error: {e}"),
    }
}

/// A request-id start that differs between devices and agent starts.
fn rand_start(socket: SocketAddr) -> i32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let port = i32::from(socket.port());
    (i32::try_from(nanos % 1_000_000).unwrap_or(0) * 1000 + port) & 0x3fff_ffff
}

async fn open(device: &SnmpDevice, request_id: i32) -> anyhow::Result<AsyncSession> {
    let socket = device.socket;
    match (&device.credentials, device.version) {
        (SnmpCredentials::Community(community), SnmpVersion::V1) => {
            AsyncSession::new_v1(socket, community.as_bytes(), request_id).await
        }
        (SnmpCredentials::Community(community), _) => {
            AsyncSession::new_v2c(socket, community.as_bytes(), request_id).await
        }
        #[cfg(feature = "snmp-v3")]
        (
            SnmpCredentials::User {
                name,
                auth,
                privacy,
            },
            _,
        ) => {
            return v3::open(socket, request_id, name, auth.as_ref(), privacy.as_ref()).await;
        }
        #[cfg(not(feature = "snmp-v3"))]
        (SnmpCredentials::User { .. }, _) => bail!("this build has no SNMPv3"),
    }
    .with_context(|| format!("opening a UDP socket to {socket}"))
}

#[cfg(feature = "snmp-v3")]
mod v3 {
    use std::net::SocketAddr;

    use anyhow::{Context as _, anyhow};
    use snmp2::AsyncSession;
    use snmp2::v3::{Auth, AuthProtocol, Cipher, KeyExtension, Security};

    use crate::config::{SnmpAuth, SnmpPrivacy};

    /// Opens a USM session and discovers the engine (id, boots, time).
    pub(super) async fn open(
        socket: SocketAddr,
        request_id: i32,
        user: &str,
        auth: Option<&(SnmpAuth, String)>,
        privacy: Option<&(SnmpPrivacy, String)>,
    ) -> anyhow::Result<AsyncSession> {
        let mut security = match auth {
            Some((protocol, password)) => Security::new(user.as_bytes(), password.as_bytes())
                .with_auth_protocol(match protocol {
                    SnmpAuth::Md5 => AuthProtocol::Md5,
                    SnmpAuth::Sha1 => AuthProtocol::Sha1,
                    SnmpAuth::Sha224 => AuthProtocol::Sha224,
                    SnmpAuth::Sha256 => AuthProtocol::Sha256,
                    SnmpAuth::Sha384 => AuthProtocol::Sha384,
                    SnmpAuth::Sha512 => AuthProtocol::Sha512,
                }),
            None => Security::new(user.as_bytes(), b"").with_auth(Auth::NoAuthNoPriv),
        };
        if let Some((protocol, password)) = privacy {
            let cipher = match protocol {
                SnmpPrivacy::Des => Cipher::Des,
                SnmpPrivacy::Aes128 => Cipher::Aes128,
                SnmpPrivacy::Aes192 => Cipher::Aes192,
                SnmpPrivacy::Aes256 => Cipher::Aes256,
            };
            security = security
                .with_auth(Auth::AuthPriv {
                    cipher,
                    privacy_password: password.as_bytes().to_vec(),
                })
                .with_key_extension_method(KeyExtension::Blumenthal);
        }
        let mut session = AsyncSession::new_v3(socket, request_id, security)
            .await
            .with_context(|| format!("opening a UDP socket to {socket}"))?;
        session
            .init()
            .await
            .map_err(|e| anyhow!("SNMPv3 engine discovery failed: {}", super::describe(&e)))?;
        Ok(session)
    }
}

async fn call(session: &mut AsyncSession, request: &Request) -> Result<Varbinds, CallError> {
    let to_oids = |arcs: &[Vec<u64>]| -> Result<Vec<Oid<'static>>, CallError> {
        arcs.iter()
            .map(|a| Oid::from(a).map_err(|_| CallError::Snmp(snmp2::Error::ValueOutOfRange)))
            .collect()
    };
    let pdu = match request {
        Request::Get(arcs) => {
            let oids = to_oids(arcs)?;
            let refs: Vec<&Oid<'_>> = oids.iter().collect();
            session.get_many(&refs).await
        }
        Request::Bulk(arcs, repetitions) => {
            let oids = to_oids(arcs)?;
            let refs: Vec<&Oid<'_>> = oids.iter().collect();
            session.getbulk(&refs, 0, *repetitions).await
        }
        Request::Next(arcs) => {
            let oid = to_oids(std::slice::from_ref(arcs))?;
            match oid.first() {
                Some(oid) => session.getnext(oid).await,
                None => return Ok(Vec::new()),
            }
        }
    }
    .map_err(CallError::Snmp)?;
    if pdu.error_status != 0 {
        return Err(CallError::Status {
            status: pdu.error_status,
            index: pdu.error_index,
        });
    }
    Ok(pdu
        .varbinds
        .map(|(oid, value)| {
            let arcs = oid.iter().map(Iterator::collect).unwrap_or_default();
            (arcs, owned(value))
        })
        .collect())
}

fn owned(value: snmp2::Value<'_>) -> Value {
    match value {
        snmp2::Value::Integer(n) => Value::Integer(n),
        snmp2::Value::OctetString(bytes) => Value::Text(bytes.to_vec()),
        snmp2::Value::Counter32(n) => Value::Counter32(n),
        snmp2::Value::Counter64(n) => Value::Counter64(n),
        snmp2::Value::Unsigned32(n) => Value::Gauge(n),
        snmp2::Value::Timeticks(n) => Value::Ticks(n),
        _ => Value::Missing,
    }
}
