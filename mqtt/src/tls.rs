//! The TLS side of `mqtts://`: which certificate authorities the client trusts.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

/// A rustls client configuration on the ring provider. It trusts the PEM certificates in `ca_file`
/// when one is given, else the operating system's trust store (rustls-native-certs, which honours
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`). Reads files; opens no connection.
///
/// The error says what is wrong with the file (cannot read it, bad PEM, a certificate that is not
/// usable as a trust anchor, no certificate at all) or that the system store has nothing usable;
/// callers put the name of their setting in front of it.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = match ca_file {
        Some(path) => file_roots(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
        tls_config(Some(&path)).unwrap();
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
            let error = tls_config(Some(path)).unwrap_err();
            assert!(error.starts_with(wanted), "{}: {error}", path.display());
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
    }

    /// Needs the `ca-certificates` package (Debian), as a daemon without `ca_file` does.
    #[test]
    fn without_a_ca_file_the_system_store_is_trusted() {
        if let Err(error) = tls_config(None) {
            panic!("install ca-certificates: {error}");
        }
    }
}
