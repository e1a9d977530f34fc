//! The TLS side of `mqtts://`: which certificate authorities the client trusts, and the client
//! certificate it presents to a broker that requires one (mutual TLS).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::warn;

/// A file [`tls_config`] could not use, by the setting that named it, and what is wrong with it.
/// Both daemons call the settings `mqtt.ca_file`, `mqtt.client_cert` and `mqtt.client_key`;
/// [`TlsError::key`] gives the name after `mqtt.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The CA file (or, without one, the system trust store).
    CaFile(String),
    /// The client certificate chain.
    ClientCert(String),
    /// The client's private key, or a key that does not belong to the certificate.
    ClientKey(String),
}

impl TlsError {
    /// The setting at fault: `ca_file`, `client_cert` or `client_key`.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::CaFile(_) => "ca_file",
            TlsError::ClientCert(_) => "client_cert",
            TlsError::ClientKey(_) => "client_key",
        }
    }

    /// What is wrong, naming the file.
    pub fn problem(&self) -> &str {
        match self {
            TlsError::CaFile(p) | TlsError::ClientCert(p) | TlsError::ClientKey(p) => p,
        }
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt.{}: {}", self.key(), self.problem())
    }
}

impl std::error::Error for TlsError {}

/// The PEM files of a client certificate: the chain (the client's own certificate first, then
/// any intermediates) and its private key (PKCS#8, PKCS#1 or SEC1, unencrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCert<'a> {
    pub cert_file: &'a Path,
    pub key_file: &'a Path,
}

impl ClientCert<'_> {
    /// Reads both files and checks that the key is the certificate's, as [`tls_config`] does, so
    /// that a configuration can be refused when it is loaded. Opens no connection.
    pub fn check(self) -> Result<(), TlsError> {
        let (chain, key) = self.read()?;
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(chain, key, &provider)
            .map(|_| ())
            .map_err(|e| key_error(self, &e))
    }

    fn read(self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = client_chain(self.cert_file).map_err(TlsError::ClientCert)?;
        let key = client_key(self.key_file).map_err(TlsError::ClientKey)?;
        Ok((chain, key))
    }
}

/// A rustls client configuration on the ring provider. It trusts the PEM certificates in `ca_file`
/// when one is given, else the operating system's trust store (rustls-native-certs, which honours
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`). With `client`, it presents that certificate when the
/// broker asks for one (`require_certificate true`); the key must belong to the certificate.
/// Reads files; opens no connection.
///
/// The error names the setting and says what is wrong with its file (cannot read it, bad PEM, a
/// certificate that is not usable as a trust anchor, no certificate or no key at all, a key that
/// does not match) or that the system store has nothing usable.
pub fn tls_config(
    ca_file: Option<&Path>,
    client: Option<ClientCert<'_>>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = match ca_file {
        Some(path) => file_roots(path),
        None => system_roots(),
    }
    .map_err(TlsError::CaFile)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::CaFile(format!("TLS protocol versions: {e}")))?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let (chain, key) = client.read()?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| key_error(client, &e))?
        }
    };
    Ok(Arc::new(config))
}

/// Every certificate in the client's PEM file, in order.
fn client_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM in {shown}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {shown}"));
    }
    Ok(chain)
}

/// The first private key in the client's PEM file.
fn client_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "no private key in {shown} (expected an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key)"
        ),
        e => format!("bad PEM in {shown}: {e}"),
    })
}

/// What rustls refused when pairing the chain with the key: the key itself (unsupported, or not
/// the certificate's) or the certificate.
fn key_error(client: ClientCert<'_>, error: &rustls::Error) -> TlsError {
    let key = client.key_file.display();
    let cert = client.cert_file.display();
    match error {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::ClientKey(format!("{key} is not the key of the certificate in {cert}"))
        }
        rustls::Error::General(_) => {
            TlsError::ClientKey(format!("unusable private key in {key}: {error}"))
        }
        _ => TlsError::ClientCert(format!("bad certificate in {cert}: {error}")),
    }
}

/// Every certificate in a PEM file; other PEM sections (keys) are skipped.
fn file_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("bad PEM in {shown}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad certificate in {shown}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in {shown}"));
    }
    Ok(roots)
}

/// The operating system's trust store. Unreadable parts are logged and skipped; only a store
/// with no usable certificate at all is an error.
fn system_roots() -> Result<rustls::RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        warn!(%error, "problem reading the system trust store");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let cause = match found.errors.first() {
            Some(error) => format!(" ({error})"),
            None => String::new(),
        };
        return Err(format!(
            "no CA file given and no usable certificate in the system trust store{cause}"
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    /// A self-signed P-256 CA certificate (`CN=netmon test CA`, valid until 2126).
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBiDCCAS+gAwIBAgIUb/w0JDO3ggPftRm2nukwmYmBIMIwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwObmV0bW9uIHRlc3QgQ0EwIBcNMjYxMTIzMTcyNjQxWhgPMjEy
NjEwMzAxNzI2NDFaMBkxFzAVBgNVBAMMDm5ldG1vbiB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE3MrA+3H4HxdTucy1iJzRGHutTWWYNziXFvJYuaHF
BFexJe7T2y2CYeJOfGCyvAY8v3307aoIhDBXcDpEzb4p96NTMFEwHQYDVR0OBBYE
FLPG2kO2xy2o5YdSmq9+goCEww8OMB8GA1UdIwQYMBaAFLPG2kO2xy2o5YdSmq9+
goCEww8OMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgI0OvQ/Q+
ajycY8YNqkz0iLVeZaC71BoJ89OXUA3nSTcCIDXv2ZJAXdhL0SOMf8Yr4MA11xe2
PV7UWwVy7y6tfSbo
-----END CERTIFICATE-----
";

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir =
                std::env::temp_dir().join(format!("netmon-mqtt-tls-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_ca_file_with_a_certificate_is_trusted() {
        let dir = Scratch::new();
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let path = dir.file("ca.pem", &format!("{key}{CA_PEM}"));
        tls_config(Some(&path), None).unwrap();
    }

    #[test]
    fn ca_file_errors_say_what_is_wrong() {
        let dir = Scratch::new();
        let missing = dir.0.join("missing.pem");
        let empty = dir.file("empty.pem", "");
        let key_only = dir.file(
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let bad_base64 = dir.file(
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        );
        let unterminated = dir.file("cut.pem", &CA_PEM[..200]);
        let not_der = dir.file(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        for (path, wanted) in [
            (&missing, "cannot read"),
            (&empty, "no certificate in"),
            (&key_only, "no certificate in"),
            (&bad_base64, "bad PEM in"),
            (&unterminated, "bad PEM in"),
            (&not_der, "bad certificate in"),
        ] {
            let error = tls_config(Some(path), None).unwrap_err();
            assert_eq!(error.key(), "ca_file", "{error}");
            let problem = error.problem();
            assert!(problem.starts_with(wanted), "{}: {error}", path.display());
            assert!(problem.contains(&path.display().to_string()), "{error}");
        }
    }

    /// A self-signed P-256 client certificate (`CN=thanh-hoa/agent-a`, valid until 2126) and its
    /// key, as PKCS#8 and as SEC1; another P-256 key that is not its key.
    const CLIENT_PEM: &str = include_str!("../tests/fixtures/client.pem");
    const CLIENT_KEY_PKCS8: &str = include_str!("../tests/fixtures/client.key");
    const CLIENT_KEY_SEC1: &str = include_str!("../tests/fixtures/client-sec1.key");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/other.key");

    #[test]
    fn a_client_certificate_and_its_key_make_a_config_that_offers_it() {
        let dir = Scratch::new();
        let ca = dir.file("ca.pem", CA_PEM);
        let cert = dir.file("client.pem", CLIENT_PEM);
        for (name, key) in [
            ("pkcs8.key", CLIENT_KEY_PKCS8),
            ("sec1.key", CLIENT_KEY_SEC1),
        ] {
            let key = dir.file(name, key);
            let client = ClientCert {
                cert_file: &cert,
                key_file: &key,
            };
            client.check().unwrap();
            let config = tls_config(Some(&ca), Some(client)).unwrap();
            assert!(config.client_auth_cert_resolver.has_certs(), "{name}");
        }
        // Without one, the client has nothing to offer a broker that asks.
        let config = tls_config(Some(&ca), None).unwrap();
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn client_certificate_errors_name_the_setting_and_the_file() {
        let dir = Scratch::new();
        let ca = dir.file("ca.pem", CA_PEM);
        let cert = dir.file("client.pem", CLIENT_PEM);
        let key = dir.file("client.key", CLIENT_KEY_PKCS8);
        let missing = dir.0.join("missing.pem");
        let empty = dir.file("empty.pem", "");
        let other_key = dir.file("other.key", OTHER_KEY);
        let key_as_cert = dir.file("key-as-cert.pem", CLIENT_KEY_PKCS8);
        let encrypted = dir.file(
            "encrypted.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let junk_key = dir.file(
            "junk.key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let not_der = dir.file(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let cut = dir.file("cut.pem", &CLIENT_PEM[..200]);
        for (cert_file, key_file, wanted_key, wanted, named) in [
            (&missing, &key, "client_cert", "cannot read", &missing),
            (&empty, &key, "client_cert", "no certificate in", &empty),
            (
                &key_as_cert,
                &key,
                "client_cert",
                "no certificate in",
                &key_as_cert,
            ),
            (&cut, &key, "client_cert", "bad PEM in", &cut),
            (
                &not_der,
                &key,
                "client_cert",
                "bad certificate in",
                &not_der,
            ),
            (&cert, &missing, "client_key", "cannot read", &missing),
            (&cert, &empty, "client_key", "no private key in", &empty),
            (&cert, &cert, "client_key", "no private key in", &cert),
            (
                &cert,
                &encrypted,
                "client_key",
                "no private key in",
                &encrypted,
            ),
            (
                &cert,
                &junk_key,
                "client_key",
                "unusable private key in",
                &junk_key,
            ),
            (&cert, &other_key, "client_key", "", &other_key),
        ] {
            let client = ClientCert {
                cert_file,
                key_file,
            };
            let error = tls_config(Some(&ca), Some(client)).unwrap_err();
            assert_eq!(client.check(), Err(error.clone()));
            assert_eq!(error.key(), wanted_key, "{error}");
            assert!(error.problem().starts_with(wanted), "{error}");
            assert!(
                error.problem().contains(&named.display().to_string()),
                "{error}"
            );
        }
        let client = ClientCert {
            cert_file: &cert,
            key_file: &other_key,
        };
        let error = tls_config(Some(&ca), Some(client)).unwrap_err();
        assert!(
            error.to_string().starts_with("mqtt.client_key: ")
                && error
                    .problem()
                    .contains("is not the key of the certificate in"),
            "{error}"
        );
        // The CA file is read first: a bad one is reported as such even with a good identity.
        let client = ClientCert {
            cert_file: &cert,
            key_file: &key,
        };
        assert_eq!(
            tls_config(Some(&missing), Some(client)).unwrap_err().key(),
            "ca_file"
        );
    }

    /// Needs the `ca-certificates` package (Debian), as a daemon without `ca_file` does.
    #[test]
    fn without_a_ca_file_the_system_store_is_trusted() {
        if let Err(error) = tls_config(None, None) {
            panic!("install ca-certificates: {error}");
        }
    }
}
