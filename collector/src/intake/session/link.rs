//! Opening a connection: TCP (and TLS for `mqtts://`), CONNECT, CONNACK.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::tokio_rustls::TlsConnector;
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Login, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::intake::config::MqttConfig;

/// How long opening a connection may take, from the TCP connect to the CONNACK.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream to the broker: TCP or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why a connection could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: the broker's host name {0:?} is not a valid server name")]
    ServerName(String),
    #[error("the broker refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("MQTT protocol error: {0}")]
    Protocol(String),
    #[error("no CONNACK within {0:?}")]
    Timeout(Duration),
    #[error("the broker closed the connection")]
    Closed,
    #[error("no answer from the broker within keep_alive of a ping")]
    NoAnswer,
}

/// An open connection: the stream, the broker's CONNACK, and what was read after it.
pub struct Opened {
    pub stream: Box<dyn Stream>,
    pub connack: ConnAck,
    pub rest: BytesMut,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("connack", &self.connack)
            .field("rest", &self.rest.len())
            .finish_non_exhaustive()
    }
}

/// Connects to the broker and opens the collector's persistent session (`clean_session`
/// false), within [`OPEN_TIMEOUT`].
pub async fn open(config: &MqttConfig, max_packet: usize) -> Result<Opened, LinkError> {
    tokio::time::timeout(OPEN_TIMEOUT, open_now(config, max_packet))
        .await
        .map_err(|_| LinkError::Timeout(OPEN_TIMEOUT))?
}

async fn open_now(config: &MqttConfig, max_packet: usize) -> Result<Opened, LinkError> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port)).await?;
    tcp.set_nodelay(true)?;
    let mut stream: Box<dyn Stream> = match &config.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(config.host.clone())
                .map_err(|_| LinkError::ServerName(config.host.clone()))?;
            Box::new(
                TlsConnector::from(Arc::clone(tls))
                    .connect(name, tcp)
                    .await?,
            )
        }
    };
    let mut connect = Connect::new(config.client_id.clone());
    connect.clean_session = false;
    connect.keep_alive = u16::try_from(config.keep_alive.as_secs()).unwrap_or(u16::MAX);
    if let Some((user, password)) = &config.credentials {
        connect.login = Some(Login::new(user.clone(), password.clone()));
    }
    let mut buffer = BytesMut::with_capacity(256);
    connect
        .write(&mut buffer)
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
    stream.write_all(&buffer).await?;
    stream.flush().await?;
    buffer.clear();
    let connack = loop {
        match read_packet(&mut buffer, max_packet)? {
            Some(Packet::ConnAck(connack)) => break connack,
            Some(other) => {
                return Err(LinkError::Protocol(format!(
                    "expected CONNACK, received {other:?}"
                )));
            }
            None => {
                if stream.read_buf(&mut buffer).await? == 0 {
                    return Err(LinkError::Closed);
                }
            }
        }
    };
    if connack.code != ConnectReturnCode::Success {
        return Err(LinkError::Refused(connack.code));
    }
    Ok(Opened {
        stream,
        connack,
        rest: buffer,
    })
}

/// The next whole packet in `buffer` (taken out of it), `None` when more bytes are needed.
pub fn read_packet(buffer: &mut BytesMut, max_packet: usize) -> Result<Option<Packet>, LinkError> {
    match Packet::read(buffer, max_packet) {
        Ok(packet) => Ok(Some(packet)),
        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(LinkError::Protocol(e.to_string())),
    }
}
