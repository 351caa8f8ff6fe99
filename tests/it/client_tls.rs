//! A target with a self-signed certificate: the harness refuses it with
//! an error that says how to accept it (--insecure-tls), and with that
//! setting it talks to the same server.

use std::sync::Arc;

use ews_conformance::client::auth::Auth;
use ews_conformance::client::transport::{HttpRequest, Transport, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

/// A TLS server on 127.0.0.1 with a fresh self-signed certificate for
/// "localhost", answering every request with a tiny SOAP body.
async fn self_signed_server() -> std::net::SocketAddr {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("a server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16384];
                let _ = tls.read(&mut buf).await;
                let body = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
                let _ = tls
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

async fn post(addr: std::net::SocketAddr, insecure: bool) -> Result<u16, String> {
    let mut config = TransportConfig::new(format!(
        "https://localhost:{}/EWS/Exchange.asmx",
        addr.port()
    ));
    config.insecure_tls = insecure;
    let transport = Transport::new(config).map_err(|e| e.to_string())?;
    transport
        .post(&HttpRequest {
            body: "<x/>",
            auth: &Auth::None,
            headers: &[],
            accept_auth_failure: true,
        })
        .await
        .map(|r| r.status)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_with_a_hint() {
    let addr = self_signed_server().await;
    let err = post(addr, false)
        .await
        .expect_err("an untrusted certificate");
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains("--insecure-tls") && err.contains("EWS_INSECURE_TLS=1"),
        "the error says how to accept it: {err}"
    );
    assert_eq!(post(addr, true).await, Ok(200));
}
