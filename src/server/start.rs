//! Start-up: load the policy and the certificate (or make a development one), bind both
//! ports, spawn the accept loop, the metrics server, the reloader and the LimitRange watch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::app::App;
use super::bind::bind_all;
use super::connection_timeouts::{Evictions, Timeouts};
use super::limit_ranges::{self, LimitRangeView, WatchHandle};
use super::listener::{Listener, Stages, raised};
use super::metrics::{self, Metrics};
use super::reload::{CertFiles, PolicyFile, ReloadHandle, Reloader};
use super::tls::{CertResolver, LoadedCert, TlsError, certified, load_cert, server_config};
use super::{LimitRangeMode, ServeArgs, ServerError, dev_dir, devcert, grant_expiry, routes};
use crate::config::{ConfigError, parse_policy};
use crate::policy::Policy;

/// `--drain-delay` when a certificate is given: long enough for kube-proxy and the
/// endpoint controllers to drop a terminating pod.
const DEFAULT_DRAIN_DELAY_S: u64 = 5;

/// A server bound to its ports and serving; see [`RunningServer::shutdown`].
/// Dropping it stops everything at once.
pub struct RunningServer {
    pub(super) local_addrs: Vec<SocketAddr>,
    pub(super) metrics_addrs: Vec<SocketAddr>,
    pub(super) dev_ca: Option<PathBuf>,
    pub(super) app: Arc<App>,
    pub(super) stop_accepting: watch::Sender<bool>,
    pub(super) graceful: watch::Sender<bool>,
    pub(super) abort: watch::Sender<bool>,
    pub(super) stop_metrics: watch::Sender<bool>,
    pub(super) connections: Arc<Semaphore>,
    pub(super) max_connections: u32,
    /// One accept loop per bound address.
    pub(super) listeners: JoinSet<()>,
    pub(super) metrics_server: JoinHandle<()>,
    pub(super) reloader: Option<ReloadHandle>,
    pub(super) limit_range_watch: Option<WatchHandle>,
    pub(super) drain_delay: Duration,
    pub(super) grace: Duration,
}

/// Loads the policy and the certificate, binds both ports and starts serving.
/// Needs a multi-threaded tokio runtime.
pub async fn start(args: &ServeArgs) -> Result<RunningServer, ServerError> {
    for (flag, value) in [
        ("--header-read-timeout", args.header_read_timeout),
        ("--request-timeout", args.request_timeout),
        ("--idle-timeout", args.idle_timeout),
        ("--max-connections", u64::from(args.max_connections)),
        ("--max-body-bytes", args.max_body_bytes as u64),
    ] {
        if value == 0 {
            return Err(ServerError::Invalid { flag, min: 1 });
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // AWS-LC seeds its generator from CPU jitter once per process (~40 ms here); done while
    // the rest loads, so that readiness includes it and the first handshake does not pay it.
    let seeding = tokio::task::spawn_blocking({
        let provider = provider.clone();
        move || provider.secure_random.fill(&mut [0u8; 32])
    });
    let watching = args.limit_ranges.mode == LimitRangeMode::Watch;
    let metrics = Arc::new(if watching {
        Metrics::with_limit_range_watch()
    } else {
        Metrics::new()
    });

    let (policy, policy_file) = match &args.config {
        None => (Policy::default(), None),
        Some(path) => {
            let (policy, bytes) = read_policy(path).await?;
            let file = PolicyFile {
                path: path.clone(),
                last: bytes,
            };
            (policy, Some(file))
        }
    };

    let given = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let cert_pem = read(cert).await?;
            let key_pem = read(key).await?;
            let loaded = load_cert(&cert_pem, &key_pem, cert, key, &provider)?;
            Some((loaded, (cert_pem, key_pem)))
        }
        _ => None,
    };
    let client_ca = match &args.client_ca {
        Some(path) => Some((path.as_path(), read(path).await?)),
        None => None,
    };

    // Before binding: a server told to watch that has no API to watch must not start.
    let limit_range_view = match args.limit_ranges.mode {
        LimitRangeMode::Watch => {
            let client = limit_ranges::client(args.limit_ranges.kube_api_url.as_ref()).await?;
            Some(Arc::new(LimitRangeView::new(
                client,
                Duration::from_secs(args.limit_ranges.sync_timeout),
                Duration::from_secs(args.request_timeout),
                metrics.clone(),
            )))
        }
        LimitRangeMode::Off => {
            if args.limit_ranges.kube_api_url.is_some() {
                warn!("--kube-api-url is ignored: --limit-ranges is off");
            }
            None
        }
    };

    if !matches!(seeding.await, Ok(Ok(()))) {
        return Err(ServerError::Randomness);
    }

    let tcp = bind_all(&args.listen, "--listen").await?;
    let metrics_tcp = bind_all(&args.metrics_listen, "--metrics-listen").await?;
    let local_addrs = local_addrs_of(&tcp, "--listen")?;
    let metrics_addrs = local_addrs_of(&metrics_tcp, "--metrics-listen")?;

    // Only now, with both ports ours, may the development files be touched: a server that
    // fails to bind must leave another one's certificate alone.
    let (loaded, cert_files_bytes, dev_ca) = match given {
        Some((loaded, bytes)) => (loaded, Some(bytes), None),
        None => {
            let dir = match &args.dev_cert_dir {
                Some(dir) => dir.clone(),
                None => dev_dir::default_dir()?,
            };
            let (dev, ca_path) = devcert::load_or_create(&dir, &provider)?;
            let dev_path = Path::new("(development certificate)");
            let loaded = certified(dev.chain, dev.key, dev_path, dev_path, &provider)?;
            (loaded, None, Some(ca_path))
        }
    };
    let LoadedCert { key, not_after } = loaded;
    if let Some(not_after) = not_after {
        metrics.cert_not_after.set(not_after);
    }
    let resolver = Arc::new(CertResolver::new(key));
    let tls = server_config(
        resolver.clone(),
        client_ca
            .as_ref()
            .map(|(path, pem)| (*path, pem.as_slice())),
        provider.clone(),
    )?;

    let mut app = App::new(policy, metrics.clone(), args.max_body_bytes);
    let mut limit_range_watch = None;
    if let Some(view) = limit_range_view {
        limit_range_watch = Some(view.spawn_watch());
        app = app.with_limit_ranges(view);
    }
    let app = Arc::new(app);
    let (stop_accepting, stop_rx) = watch::channel(false);
    let (graceful, graceful_rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(args.max_connections as usize));
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let router = routes::router(app.clone(), Duration::from_secs(args.request_timeout));
    // One set of timeouts, evictions and connection slots for every address.
    let timeouts = Timeouts {
        header_read: Duration::from_secs(args.header_read_timeout),
        idle: Duration::from_secs(args.idle_timeout),
        // An answer nobody takes for as long as a request may take is not awaited.
        write_stall: Duration::from_secs(args.request_timeout),
        evictions: Evictions::default(),
    };
    let mut listeners = JoinSet::new();
    for tcp in tcp {
        let listener = Listener {
            tcp,
            acceptor: acceptor.clone(),
            router: router.clone(),
            metrics: metrics.clone(),
            connections: connections.clone(),
            timeouts: timeouts.clone(),
            stages: Stages {
                stop_accepting: stop_rx.clone(),
                graceful: graceful_rx.clone(),
                abort: abort_rx.clone(),
            },
        };
        listeners.spawn(listener.run());
    }

    let (stop_metrics, stop_metrics_rx) = watch::channel(false);
    let metrics_router = metrics::router(metrics.clone());
    let metrics_server = tokio::spawn(async move {
        let mut servers = JoinSet::new();
        for tcp in metrics_tcp {
            let mut stop = stop_metrics_rx.clone();
            let served = axum::serve(tcp, metrics_router.clone())
                .with_graceful_shutdown(async move { raised(&mut stop).await });
            servers.spawn(served.into_future());
        }
        while let Some(served) = servers.join_next().await {
            if let Ok(Err(error)) = served {
                warn!(%error, "metrics server stopped");
            }
        }
    });

    let cert_files = match (&args.tls_cert, &args.tls_key, cert_files_bytes) {
        (Some(cert), Some(key), Some(last)) => Some(CertFiles {
            cert: cert.clone(),
            key: key.clone(),
            resolver,
            provider,
            last,
        }),
        _ => None,
    };
    let reloader = Reloader::new(cert_files, policy_file, app.clone()).spawn();
    grant_expiry::spawn(&app);

    if let Some(ca) = &dev_ca {
        info!(
            ca = %ca.display(),
            "no --tls-cert: serving a self-signed development certificate for localhost, 127.0.0.1 and ::1; clients trust it with --cacert {}",
            ca.display()
        );
    }
    info!(
        listen = %joined(&local_addrs),
        metrics_listen = %joined(&metrics_addrs),
        config = %args.config.as_ref().map_or("(default policy)".into(), |p| p.display().to_string()),
        mtls = args.client_ca.is_some(),
        limit_ranges = if watching { "watch" } else { "off" },
        "deployguard ready"
    );

    Ok(RunningServer {
        local_addrs,
        metrics_addrs,
        dev_ca,
        app,
        stop_accepting,
        graceful,
        abort,
        stop_metrics,
        connections,
        max_connections: args.max_connections,
        listeners,
        metrics_server,
        reloader,
        limit_range_watch,
        drain_delay: Duration::from_secs(drain_delay(args)),
        grace: Duration::from_secs(args.shutdown_grace),
    })
}

impl RunningServer {
    /// The TLS port's first address (the real port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every address the TLS port is bound to (a host name may stand for several).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The metrics port's first address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addrs[0]
    }

    /// Where the development CA was written, when no certificate was given.
    pub fn dev_ca_path(&self) -> Option<&Path> {
        self.dev_ca.as_deref()
    }
}

/// The drain delay waits for endpoints to stop routing here; a development server (no
/// certificate given) has none, so Ctrl-C stops it at once unless a delay is asked for.
fn drain_delay(args: &ServeArgs) -> u64 {
    match (args.drain_delay, &args.tls_cert) {
        (Some(seconds), _) => seconds,
        (None, Some(_)) => DEFAULT_DRAIN_DELAY_S,
        (None, None) => 0,
    }
}

async fn read_policy(path: &Path) -> Result<(Policy, Vec<u8>), ConfigError> {
    let origin = path.display().to_string();
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| ConfigError::Read {
            path: origin.clone(),
            error,
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|error| ConfigError::Syntax {
        origin: origin.clone(),
        message: format!("not UTF-8: {error}"),
    })?;
    let policy = parse_policy(text, &origin)?;
    Ok((policy, bytes))
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|error| TlsError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// The bound addresses (never empty: `bind_all` binds one or fails).
fn local_addrs_of(
    listeners: &[TcpListener],
    flag: &'static str,
) -> Result<Vec<SocketAddr>, ServerError> {
    listeners
        .iter()
        .map(|listener| {
            listener.local_addr().map_err(|error| ServerError::Bind {
                flag,
                addr: "a bound socket".into(),
                error,
            })
        })
        .collect()
}

fn joined(addrs: &[SocketAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    addrs.join(",")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(argv: &[&str]) -> ServeArgs {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let argv = std::iter::once("serve").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn a_development_server_skips_the_drain_delay_unless_asked() {
        let cert = ["--tls-cert", "tls.crt", "--tls-key", "tls.key"];
        assert_eq!(drain_delay(&args(&[])), 0);
        assert_eq!(drain_delay(&args(&cert)), DEFAULT_DRAIN_DELAY_S);
        assert_eq!(drain_delay(&args(&["--drain-delay", "3"])), 3);
        let explicit = [&cert[..], &["--drain-delay", "0"]].concat();
        assert_eq!(drain_delay(&args(&explicit)), 0);
    }
}
