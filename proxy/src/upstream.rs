//! Pooled HTTP clients to providers: HTTP/1.1 and HTTP/2 by ALPN over rustls with verified
//! certificates (the public web roots plus an optional per-connection CA bundle for private or
//! test CAs). One client per connection, because trust roots are per connection.

use crate::body::ProxyBody;
use crate::config::{ConnectionConfig, ServerConfig};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, ProxyBody>;

thread_local! {
    /// The data-plane worker this thread runs (see `server`), to pick its connection pool.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as data-plane worker `index`.
pub fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// One pooled client per data-plane worker: a worker's requests use connections that its own
/// event loop drives, so forwarding never wakes another thread.
pub struct UpstreamClients(Vec<UpstreamClient>);

impl UpstreamClients {
    pub fn build(
        server: &ServerConfig,
        connection: &ConnectionConfig,
        workers: usize,
    ) -> Result<Self, String> {
        (0..workers.max(1))
            .map(|_| build_client(server, connection))
            .collect::<Result<Vec<_>, _>>()
            .map(UpstreamClients)
    }

    /// The calling worker's client.
    pub fn get(&self) -> &UpstreamClient {
        let index = WORKER.with(|w| w.get());
        &self.0[index % self.0.len()]
    }
}

pub fn build_client(
    server: &ServerConfig,
    connection: &ConnectionConfig,
) -> Result<UpstreamClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &connection.ca_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| format!("invalid certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(server.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(server.pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}

/// What went wrong talking to the provider, for the error taxonomy.
pub enum UpstreamFailure {
    Connect,
    BodyTooLarge,
    Other,
}

pub fn classify(err: &hyper_util::client::legacy::Error) -> UpstreamFailure {
    if err.is_connect() {
        return UpstreamFailure::Connect;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return UpstreamFailure::BodyTooLarge;
        }
        source = e.source();
    }
    UpstreamFailure::Other
}
