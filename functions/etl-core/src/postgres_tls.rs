//! TLS to PostgreSQL as RDS needs it: rustls, the Amazon RDS certificate authorities built in
//! (`certs/rds-global-bundle.pem`, refreshed by `scripts/update-rds-ca`), and libpq's
//! `sslmode` meanings (see [`SslMode`]).
//!
//! RDS server certificates chain to Amazon's RDS CAs (RDS Proxy's to Amazon Trust Services),
//! which common root stores lack, so the bundle is compiled in rather than read from the
//! system. Extra roots (a local CA, a self-managed server's) come from `sslrootcert` or
//! `DATABASE_CA_FILE`.
//!
//! A handshake that fails on a certificate cannot succeed on retry, so
//! [`handshake_failure`] picks it out of a connection error for the caller to report as
//! [`TlsError::Handshake`] (`Fatal`), with what to change.

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{CaFile, SslMode, TlsSettings};
use crate::error::TlsError;

/// The Amazon RDS regional root CAs and the Amazon Trust Services roots (RDS Proxy).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// The connector a pool hands to tokio-postgres, for these settings. Reads the extra CA
/// files; connects to nothing.
pub fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, TlsError> {
    Ok(MakeRustlsConnect::new(client_config(settings)?))
}

/// The rustls configuration for these settings.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    // Both of rustls's providers are compiled into this workspace (the AWS SDK wants
    // aws-lc-rs, others ring), so rustls cannot pick one itself.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let config = match settings.mode {
        // `Disable` never reaches the connector (tokio-postgres does not negotiate TLS), but
        // the pool needs one.
        SslMode::Disable | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        SslMode::VerifyCa => {
            let verifier = chain_verifier(settings, provider)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        }
        SslMode::VerifyFull => builder.with_webpki_verifier(chain_verifier(settings, provider)?),
    };
    Ok(config.with_no_client_auth())
}

fn chain_verifier(
    settings: &TlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut roots = builtin_roots()?;
    for file in &settings.ca_files {
        add_ca_file(&mut roots, file)?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// The built-in bundle as a root store. Every certificate must parse: the bundle is ours.
pub fn builtin_roots() -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(RDS_CA_BUNDLE) {
        let cert = cert.map_err(|e| TlsError::Bundle(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Bundle(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Bundle("it holds no certificate".into()));
    }
    Ok(roots)
}

fn add_ca_file(roots: &mut RootCertStore, file: &CaFile) -> Result<(), TlsError> {
    let pem = std::fs::read(&file.path).map_err(|source| TlsError::CaFile {
        var: file.var,
        path: file.path.clone(),
        source,
    })?;
    let bad = |reason: String| TlsError::BadCertificate {
        var: file.var,
        path: file.path.clone(),
        reason,
    };
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsError::NoCertificate {
            var: file.var,
            path: file.path.clone(),
        });
    }
    Ok(())
}

/// `verify-ca`: the chain is checked, the name is not. rustls checks the name last, after
/// the chain, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require`: any certificate. The handshake's own signatures are still checked, so the
/// session is encrypted with whoever answered; who that is, is not checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS failure in a connection error, if that is what it is: a certificate or protocol
/// error from rustls, or a server without TLS. `None` for anything retrying may fix (a
/// refused or reset connection, a timeout, mid-handshake included).
pub fn handshake_failure(
    err: &tokio_postgres::Error,
    server: &str,
    mode: SslMode,
) -> Option<TlsError> {
    let failure = |reason: String, hint: Option<&'static str>| TlsError::Handshake {
        server: server.to_string(),
        mode: mode.as_str(),
        reason,
        hint,
    };
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = rustls_error(current) {
            return Some(failure(tls.to_string(), hint(tls)));
        }
        source = current.source();
    }
    // tokio-postgres's own words when the server answers the TLS request with "no".
    err.source()
        .map(ToString::to_string)
        .filter(|text| text.contains("server does not support TLS"))
        .map(|text| {
            failure(
                text,
                Some("use sslmode=disable only for a local server without TLS"),
            )
        })
}

/// tokio-rustls hands rustls's error over inside an `io::Error`, whose `source()` skips it.
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    err.downcast_ref::<rustls::Error>().or_else(|| {
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

fn hint(err: &rustls::Error) -> Option<&'static str> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => Some(
            "the server's certificate does not chain to a trusted CA: the built-in Amazon RDS \
             bundle, DATABASE_CA_FILE or the connection string's sslrootcert",
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => Some(
            "the certificate does not name the host connected to: connect with a name it holds \
             (on RDS the instance or proxy endpoint), or use sslmode=verify-ca",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_built_in_bundle_parses_into_every_rds_root() {
        let roots = builtin_roots().unwrap();
        assert!(roots.len() >= 80, "only {} roots", roots.len());
        let pem_blocks = String::from_utf8_lossy(RDS_CA_BUNDLE)
            .matches("-----BEGIN CERTIFICATE-----")
            .count();
        assert_eq!(roots.len(), pem_blocks);
    }

    #[test]
    fn every_mode_builds_and_ca_file_errors_name_the_variable() {
        for mode in [
            SslMode::Disable,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let settings = TlsSettings {
                mode,
                ca_files: Vec::new(),
            };
            client_config(&settings).unwrap_or_else(|e| panic!("{mode}: {e}"));
        }

        let missing = TlsSettings {
            mode: SslMode::VerifyFull,
            ca_files: vec![CaFile {
                path: PathBuf::from("/nonexistent/ca.crt"),
                var: "DATABASE_CA_FILE",
            }],
        };
        let err = client_config(&missing).unwrap_err();
        assert!(matches!(err, TlsError::CaFile { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("DATABASE_CA_FILE") && text.contains("/nonexistent/ca.crt"),
            "{text}"
        );

        let not_pem = std::env::temp_dir().join(format!("not-pem-{}.crt", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let settings = TlsSettings {
            mode: SslMode::VerifyCa,
            ca_files: vec![CaFile {
                path: not_pem.clone(),
                var: "DATABASE_URL",
            }],
        };
        let err = client_config(&settings).unwrap_err();
        let _ = std::fs::remove_file(&not_pem);
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }
}
