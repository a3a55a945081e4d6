//! TLS for notifications (HTTPS webhooks and Slack, SMTP with STARTTLS or on port
//! 465): rustls with the ring provider and the Mozilla root certificates built in, so
//! the binary needs no system certificate store (it runs in a `FROM scratch` image).

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;

/// The roots every connection trusts, plus the PEM certificates of `extra_ca`.
pub(crate) fn client_config(extra_ca: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {path}: {e}"))?;
        for c in certs {
            roots
                .add(c.map_err(|e| format!("ca_file {path}: {e}"))?)
                .map_err(|e| format!("ca_file {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The shared default configuration (built-in roots only).
pub(crate) fn default_config() -> Arc<ClientConfig> {
    static CFG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CFG.get_or_init(|| match client_config(None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "TLS setup failed; HTTPS notifications will fail");
            Arc::new(
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| unreachable_tls()),
            )
        }
    })
    .clone()
}

#[allow(clippy::panic)]
fn unreachable_tls() -> ClientConfig {
    panic!("ring supports the default TLS versions")
}

/// Makes ring the process-wide rustls provider (what `reqwest` clients built without a
/// TLS configuration of their own use). Harmless if one is installed already.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for notifications that speaks HTTPS with `default_config`.
pub(crate) fn http_client() -> reqwest::Client {
    install_provider();
    reqwest::Client::builder()
        .user_agent(concat!("SignalBox/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls((*default_config()).clone())
        .build()
        .unwrap_or_default()
}

/// Wraps a connected stream in TLS for `host`.
pub(crate) async fn connect<S>(
    stream: S,
    host: &str,
    cfg: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<S>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("bad TLS server name {host}: {e}"))?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))
}
