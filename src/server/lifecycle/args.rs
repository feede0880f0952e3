//! `deployguard serve`'s command line: a clap shell that checks ranges as it parses and
//! turns into the [`ServerConfig`] the server runs on.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use tracing::warn;

use crate::server::lifecycle::config::{CertificateFiles, LimitRangeWatch, ServerConfig};
use crate::server::transport::bind::ListenAddr;

/// `--drain-delay` when a certificate is given: long enough for kube-proxy and the
/// endpoint controllers to drop a terminating pod.
const DEFAULT_DRAIN_DELAY_S: u64 = 5;

/// Seconds, counts and sizes that must be positive (zero would stop the server working).
fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: FromStr + From<u8> + PartialOrd,
    T::Err: fmt::Display,
{
    let value: T = text.parse().map_err(|error: T::Err| error.to_string())?;
    if value < T::from(1) {
        return Err("must be at least 1".to_owned());
    }
    Ok(value)
}

/// `deployguard serve` options; every flag has a `DEPLOYGUARD_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the TLS port (webhook endpoints and health): an IP address
    /// (`[::]:8443` for IPv6 and IPv4) or a host name, every address it resolves to bound.
    #[arg(long, env = "DEPLOYGUARD_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: ListenAddr,
    /// Address of the plain-HTTP metrics port, written like --listen.
    #[arg(
        long,
        env = "DEPLOYGUARD_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: ListenAddr,
    /// Serving certificate chain (PEM). Without it a self-signed development CA and
    /// certificate are generated at start-up.
    #[arg(long, env = "DEPLOYGUARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "DEPLOYGUARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) that client certificates must chain to; turns on mTLS.
    #[arg(long, env = "DEPLOYGUARD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long, env = "DEPLOYGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: `auto` writes text when standard output (where the log goes) is a
    /// terminal and JSON lines otherwise.
    #[arg(
        long,
        env = "DEPLOYGUARD_LOG_FORMAT",
        value_enum,
        default_value = "auto"
    )]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes (the API server's own request limit is 3 MiB;
    /// an AdmissionReview carries the object twice on UPDATE).
    #[arg(long, env = "DEPLOYGUARD_MAX_BODY_BYTES", default_value_t = 7 * 1024 * 1024, value_parser = at_least_one::<usize>)]
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "DEPLOYGUARD_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,
    /// Seconds the listener keeps accepting after SIGTERM while /readyz reports 503, so
    /// that endpoints stop routing here first [default: 5; 0 without --tls-cert, where no
    /// endpoints route here].
    #[arg(long, env = "DEPLOYGUARD_DRAIN_DELAY")]
    pub drain_delay: Option<u64>,
    /// Seconds a client gets for the TLS handshake, then (HTTP/1.1) for the headers of its
    /// first request, and of each later request from its first byte on. Keep it below the
    /// webhook's timeoutSeconds.
    #[arg(long, env = "DEPLOYGUARD_HEADER_READ_TIMEOUT", default_value_t = 3, value_parser = at_least_one::<u64>)]
    pub header_read_timeout: u64,
    /// Seconds from the request headers to the answer, body upload included (408 after);
    /// also how long a connection may wait for its client to read before it is closed.
    /// Keep it below the webhook's timeoutSeconds.
    #[arg(long, env = "DEPLOYGUARD_REQUEST_TIMEOUT", default_value_t = 4, value_parser = at_least_one::<u64>)]
    pub request_timeout: u64,
    /// Seconds a keep-alive connection may stay idle. Above client-go's 90 s, so the API
    /// server closes its idle connections first. While all --max-connections are taken,
    /// connections idle (or silent since they connected) for 250 ms close to make room.
    #[arg(long, env = "DEPLOYGUARD_IDLE_TIMEOUT", default_value_t = 120, value_parser = at_least_one::<u64>)]
    pub idle_timeout: u64,
    /// Most TLS connections open at once; further clients wait in the listen backlog.
    #[arg(long, env = "DEPLOYGUARD_MAX_CONNECTIONS", default_value_t = 512, value_parser = at_least_one::<u32>)]
    pub max_connections: u32,
    /// Private directory (created with mode 0700, refused if another user owns it or can
    /// write to it) where the development CA and certificate are kept and reused when no
    /// --tls-cert is given [default: $XDG_RUNTIME_DIR/deployguard-dev, else
    /// $XDG_CACHE_HOME/deployguard-dev or ~/.cache/deployguard-dev].
    #[arg(long, env = "DEPLOYGUARD_DEV_CERT_DIR")]
    pub dev_cert_dir: Option<PathBuf>,
    /// The LimitRange watch (boxed: these arguments are a variant of the CLI's command
    /// enum, which clippy wants small).
    #[command(flatten)]
    pub limit_ranges: Box<LimitRangeArgs>,
}

/// `serve`'s LimitRange options.
#[derive(Debug, Clone, Args)]
pub struct LimitRangeArgs {
    /// The cluster's LimitRanges: `watch` watches them cluster-wide (RBAC: list and watch
    /// limitranges), so that their defaults and bounds apply to templates as LimitRanger
    /// will apply them to the pods; `off` judges templates as written.
    #[arg(
        long = "limit-ranges",
        env = "DEPLOYGUARD_LIMIT_RANGES",
        value_enum,
        default_value = "off"
    )]
    pub mode: LimitRangeMode,
    /// Seconds /readyz waits for the first complete list of LimitRanges; then the server is
    /// ready without LimitRange data (logged, in /readyz's body and
    /// deployguard_limit_ranges_synced 0) until the list completes.
    #[arg(
        long = "limit-ranges-sync-timeout",
        env = "DEPLOYGUARD_LIMIT_RANGES_SYNC_TIMEOUT",
        default_value_t = 10
    )]
    pub sync_timeout: u64,
    /// API server URL for --limit-ranges watch, reached without credentials (kubectl
    /// proxy's http://127.0.0.1:8001, tests). Without it: KUBECONFIG, else the in-cluster
    /// service account.
    #[arg(long, env = "DEPLOYGUARD_KUBE_API_URL")]
    pub kube_api_url: Option<axum::http::Uri>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LimitRangeMode {
    Watch,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

impl ServeArgs {
    /// The server's configuration. A `--kube-api-url` without the watch is said and dropped.
    pub fn config(&self) -> ServerConfig {
        let watch = self.limit_ranges.mode == LimitRangeMode::Watch;
        if !watch && self.limit_ranges.kube_api_url.is_some() {
            warn!("--kube-api-url is ignored: --limit-ranges is off");
        }
        let seconds = Duration::from_secs;
        ServerConfig {
            listen: self.listen.clone(),
            metrics_listen: self.metrics_listen.clone(),
            certificate: self
                .tls_cert
                .clone()
                .zip(self.tls_key.clone())
                .map(|(cert, key)| CertificateFiles { cert, key }),
            client_ca: self.client_ca.clone(),
            policy_file: self.config.clone(),
            max_body_bytes: self.max_body_bytes,
            shutdown_grace: seconds(self.shutdown_grace),
            drain_delay: seconds(self.drain_delay()),
            header_read_timeout: seconds(self.header_read_timeout),
            request_timeout: seconds(self.request_timeout),
            idle_timeout: seconds(self.idle_timeout),
            max_connections: self.max_connections,
            dev_cert_dir: self.dev_cert_dir.clone(),
            limit_ranges: watch.then(|| LimitRangeWatch {
                sync_timeout: seconds(self.limit_ranges.sync_timeout),
                kube_api_url: self.limit_ranges.kube_api_url.clone(),
            }),
        }
    }

    /// The drain delay waits for endpoints to stop routing here; a development server (no
    /// certificate given) has none, so Ctrl-C stops it at once unless a delay is asked for.
    fn drain_delay(&self) -> u64 {
        match (self.drain_delay, &self.tls_cert) {
            (Some(seconds), _) => seconds,
            (None, Some(_)) => DEFAULT_DRAIN_DELAY_S,
            (None, None) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(argv: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = std::iter::once("serve").chain(argv.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.serve)
    }

    fn config(argv: &[&str]) -> ServerConfig {
        parse(argv).unwrap().config()
    }

    #[test]
    fn a_development_server_skips_the_drain_delay_unless_asked() {
        let cert = ["--tls-cert", "tls.crt", "--tls-key", "tls.key"];
        assert_eq!(config(&[]).drain_delay, Duration::ZERO);
        assert_eq!(
            config(&cert).drain_delay,
            Duration::from_secs(DEFAULT_DRAIN_DELAY_S)
        );
        assert_eq!(
            config(&["--drain-delay", "3"]).drain_delay,
            Duration::from_secs(3)
        );
        let explicit = [&cert[..], &["--drain-delay", "0"]].concat();
        assert_eq!(config(&explicit).drain_delay, Duration::ZERO);
    }

    #[test]
    fn durations_and_ranges_are_checked_as_the_command_line_is_read() {
        let defaults = config(&[]);
        assert_eq!(defaults.request_timeout, Duration::from_secs(4));
        assert_eq!(defaults.idle_timeout, Duration::from_secs(120));
        assert_eq!(defaults.max_body_bytes, 7 * 1024 * 1024);
        assert!(defaults.limit_ranges.is_none() && defaults.certificate.is_none());
        for flag in [
            "--header-read-timeout",
            "--request-timeout",
            "--idle-timeout",
            "--max-connections",
            "--max-body-bytes",
        ] {
            let error = parse(&[flag, "0"]).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(
                    |e| e.contains("invalid value '0'") && e.contains("must be at least 1")
                ),
                "{flag}: {error:?}"
            );
        }
        let watch = config(&[
            "--limit-ranges",
            "watch",
            "--limit-ranges-sync-timeout",
            "2",
        ]);
        assert_eq!(
            watch.limit_ranges.map(|w| w.sync_timeout),
            Some(Duration::from_secs(2))
        );
    }
}
