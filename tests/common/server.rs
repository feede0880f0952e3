//! The server started in-process on loopback with a test certificate.

use std::net::SocketAddr;

use clap::Parser;
use deployguard::server::{RunningServer, ServeArgs, ServerConfig, start};

use super::openmetrics::{Metrics, scrape};
use super::pki::{CertPair, Pki, install_provider};
use super::volume::Volume;

/// The configuration `deployguard serve` makes of loopback port 0, no drain delay, plus `extra`.
pub fn serve_args(extra: &[&str]) -> ServerConfig {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let mut argv = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--drain-delay",
        "0",
        "--shutdown-grace",
        "5",
        "--log-format",
        "text",
    ];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().serve.config()
}

/// A server with a certificate from `pki` in a kubelet-style volume, started in-process.
pub struct TestServer {
    pub server: RunningServer,
    pub tls: Volume,
    /// The certificate the server started with.
    pub first_cert: CertPair,
    pub ca_pem: String,
    pub temp: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(pki: &Pki, extra: &[&str]) -> TestServer {
        install_provider();
        let temp = tempfile::tempdir().unwrap();
        let pair = pki.server(2090);
        let tls = Volume::new(
            &temp.path().join("tls"),
            &[
                ("tls.crt", pair.cert_pem.as_bytes()),
                ("tls.key", pair.key_pem.as_bytes()),
            ],
        );
        let cert = tls.path("tls.crt").display().to_string();
        let key = tls.path("tls.key").display().to_string();
        let mut argv = vec!["--tls-cert", &cert, "--tls-key", &key];
        argv.extend_from_slice(extra);
        let server = start(&serve_args(&argv)).await.unwrap();
        TestServer {
            server,
            tls,
            first_cert: pair,
            ca_pem: pki.ca_pem.clone(),
            temp,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.server.local_addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub async fn metrics(&self) -> Metrics {
        scrape(self.server.metrics_addr()).await
    }
}
