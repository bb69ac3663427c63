//! End-to-end: a TLS data plane where callers prove who they are with a client certificate.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::upstream::Upstream;
use gatehouse_e2e::{configs, Gatehouse};

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_pem: String,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "callers CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let server_key = rcgen::KeyPair::generate().expect("key");
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server cert");
    let client_key = rcgen::KeyPair::generate().expect("key");
    let mut client_params =
        rcgen::CertificateParams::new(vec!["billing.internal".to_owned()]).expect("params");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params
        .signed_by(&client_key, &ca, &ca_key)
        .expect("client cert");
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_san_identifies_the_caller() {
    let upstream = Upstream::start().await;
    let pki = pki();
    let tls = "[server.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n";
    let billing = format!(
        "[[callers]]\nid = \"billing\"\nmtls_san = [\"billing.internal\"]\n{}",
        configs::grant(&["up"], &["GET"], &["/billing/**"], "")
    );
    let config = format!(
        "{}{tls}{}{billing}{}",
        configs::server(""),
        configs::testapi_connection("up", &upstream.http_url(), ""),
        configs::caller("token-caller", "tok", &["up"], &["GET"], &["/token/**"])
    );
    let gh = Gatehouse::start_with(
        &config,
        &[
            ("server.pem", &pki.server_cert),
            ("server.key", &pki.server_key),
            ("ca.pem", &pki.ca_pem),
        ],
        &[],
    );
    let base = gh
        .data_url()
        .replace("http://127.0.0.1", "https://localhost");
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("ca");
    let with_cert = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca.clone())
        .identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).expect("identity"))
        .build()
        .expect("client");
    let without_cert = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .expect("client");

    let r = with_cert
        .get(format!("{base}/up/billing/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "SAN billing.internal is caller billing");
    let r = with_cert
        .get(format!("{base}/up/token/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "billing has no grant for /token");
    let r = without_cert
        .get(format!("{base}/up/billing/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        407,
        "no certificate and no token: unauthenticated"
    );
    let r = without_cert
        .get(format!("{base}/up/token/x"))
        .header("proxy-authorization", "Bearer tok")
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        200,
        "token callers still work on a TLS data plane"
    );
    assert_eq!(upstream.received().len(), 2);
}
