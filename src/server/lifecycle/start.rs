//! Start-up: load the policy and the certificate (or make a development one), bind both
//! ports, spawn the accept loop, the metrics server, the reloader and the LimitRange watch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::{ConfigError, policy_from_bytes};
use crate::policy::Policy;
use crate::policy_file::read_policy_file;
use crate::server::http::app::App;
use crate::server::http::routes;
use crate::server::lifecycle::grant_expiry;
use crate::server::lifecycle::reload::{CertFiles, PolicyFile, ReloadHandle, Reloader};
use crate::server::limit_ranges::{self, LimitRangeView, WatchHandle};
use crate::server::metrics::{self, Metrics};
use crate::server::tls::resolver::{
    CertResolver, LoadedCert, TlsError, certified, load_cert, server_config,
};
use crate::server::tls::{dev_dir, devcert};
use crate::server::transport::bind::bind_all;
use crate::server::transport::connection_timeouts::{Evictions, Timeouts};
use crate::server::transport::listener::{Listener, Stages, raised};
use crate::server::{ServerConfig, ServerError};

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
pub async fn start(config: &ServerConfig) -> Result<RunningServer, ServerError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // AWS-LC seeds its generator from CPU jitter once per process (~40 ms here); done while
    // the rest loads, so that readiness includes it and the first handshake does not pay it.
    let seeding = tokio::task::spawn_blocking({
        let provider = provider.clone();
        move || provider.secure_random.fill(&mut [0u8; 32])
    });
    let watch = config.limit_ranges.as_ref();
    let metrics = Arc::new(if watch.is_some() {
        Metrics::with_limit_range_watch()
    } else {
        Metrics::new()
    });
    let (policy, policy_file) = load_policy(config)?;
    let given = load_given_certificate(config, &provider).await?;
    let client_ca = match &config.client_ca {
        Some(path) => Some((path.as_path(), read(path).await?)),
        None => None,
    };
    // Before binding: a server told to watch that has no API to watch must not start.
    let limit_range_view = match watch {
        Some(watch) => Some(Arc::new(LimitRangeView::new(
            limit_ranges::client(watch.kube_api_url.as_ref()).await?,
            watch.sync_timeout,
            config.request_timeout,
            metrics.clone(),
        ))),
        None => None,
    };
    if !matches!(seeding.await, Ok(Ok(()))) {
        return Err(ServerError::Randomness);
    }

    let tcp = bind_all(&config.listen, "--listen").await?;
    let metrics_tcp = bind_all(&config.metrics_listen, "--metrics-listen").await?;
    let local_addrs = local_addrs_of(&tcp, "--listen")?;
    let metrics_addrs = local_addrs_of(&metrics_tcp, "--metrics-listen")?;

    // Only now, with both ports ours, may the development files be touched: a server that
    // fails to bind must leave another one's certificate alone.
    let (loaded, cert_files_bytes, dev_ca) = match given {
        Some((loaded, bytes)) => (loaded, Some(bytes), None),
        None => {
            let (loaded, ca_path) = development_certificate(config, &provider)?;
            (loaded, None, Some(ca_path))
        }
    };
    let LoadedCert {
        key,
        not_after,
        serial,
    } = loaded;
    if let Some(not_after) = not_after {
        metrics.cert_not_after.set(not_after);
    }
    let resolver = Arc::new(CertResolver::new(key, &serial));
    let tls = server_config(
        resolver.clone(),
        client_ca
            .as_ref()
            .map(|(path, pem)| (*path, pem.as_slice())),
        provider.clone(),
    )?;

    let mut app = App::new(policy, metrics.clone(), config.max_body_bytes);
    let mut limit_range_watch = None;
    if let Some(view) = limit_range_view {
        limit_range_watch = Some(view.spawn_watch());
        app = app.with_limit_ranges(view);
    }
    let app = Arc::new(app);
    let (stop_accepting, stop_rx) = watch::channel(false);
    let (graceful, graceful_rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(config.max_connections as usize));
    let stages = Stages {
        stop_accepting: stop_rx,
        graceful: graceful_rx,
        abort: abort_rx,
    };
    let listeners = spawn_listeners(config, tcp, tls, &resolver, &app, &connections, &stages);
    let (stop_metrics, stop_metrics_rx) = watch::channel(false);
    let metrics_server = spawn_metrics_server(metrics_tcp, &metrics, stop_metrics_rx);

    let cert_files = match (&config.certificate, cert_files_bytes) {
        (Some(files), Some(last)) => Some(CertFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
            resolver,
            provider,
            last,
        }),
        _ => None,
    };
    let reloader = Reloader::new(cert_files, policy_file, app.clone()).spawn();
    grant_expiry::spawn(&app);
    log_ready(config, &local_addrs, &metrics_addrs, dev_ca.as_deref());

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
        max_connections: config.max_connections,
        listeners,
        metrics_server,
        reloader,
        limit_range_watch,
        drain_delay: config.drain_delay,
        grace: config.shutdown_grace,
    })
}

/// The policy file's policy (and its bytes, to notice changes), or the default policy.
fn load_policy(config: &ServerConfig) -> Result<(Policy, Option<PolicyFile>), ConfigError> {
    let Some(path) = &config.policy_file else {
        return Ok((Policy::default(), None));
    };
    let bytes = read_policy_file(path)?;
    let policy = policy_from_bytes(&bytes, &path.display().to_string())?;
    let file = PolicyFile {
        path: path.clone(),
        last: bytes,
    };
    Ok((policy, Some(file)))
}

/// The certificate given on the command line (and its files' bytes), if one is.
async fn load_given_certificate(
    config: &ServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<(LoadedCert, (Vec<u8>, Vec<u8>))>, TlsError> {
    let Some(files) = &config.certificate else {
        return Ok(None);
    };
    let cert_pem = read(&files.cert).await?;
    let key_pem = read(&files.key).await?;
    let loaded = load_cert(&cert_pem, &key_pem, &files.cert, &files.key, provider)?;
    Ok(Some((loaded, (cert_pem, key_pem))))
}

/// The development certificate (made or reused) and where its CA is.
fn development_certificate(
    config: &ServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<(LoadedCert, PathBuf), ServerError> {
    let dir = match &config.dev_cert_dir {
        Some(dir) => dir.clone(),
        None => dev_dir::default_dir()?,
    };
    let (dev, ca_path) = devcert::load_or_create(&dir, provider)?;
    let dev_path = Path::new("(development certificate)");
    let loaded = certified(dev.chain, dev.key, dev_path, dev_path, provider)?;
    Ok((loaded, ca_path))
}

/// One accept loop per bound address, sharing the timeouts, evictions and connection slots.
fn spawn_listeners(
    config: &ServerConfig,
    tcp: Vec<TcpListener>,
    tls: rustls::ServerConfig,
    resolver: &Arc<CertResolver>,
    app: &Arc<App>,
    connections: &Arc<Semaphore>,
    stages: &Stages,
) -> JoinSet<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let router = routes::router(app.clone(), config.request_timeout);
    let timeouts = Timeouts {
        header_read: config.header_read_timeout,
        idle: config.idle_timeout,
        // An answer nobody takes for as long as a request may take is not awaited.
        write_stall: config.request_timeout,
        evictions: Evictions::default(),
    };
    let mut listeners = JoinSet::new();
    for tcp in tcp {
        let listener = Listener {
            tcp,
            acceptor: acceptor.clone(),
            resolver: resolver.clone(),
            router: router.clone(),
            metrics: app.metrics.clone(),
            connections: connections.clone(),
            timeouts: timeouts.clone(),
            stages: stages.clone(),
        };
        listeners.spawn(listener.run());
    }
    listeners
}

/// The plain-HTTP metrics port, on every address bound for it.
fn spawn_metrics_server(
    metrics_tcp: Vec<TcpListener>,
    metrics: &Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let metrics_router = metrics::router(metrics.clone());
    tokio::spawn(async move {
        let mut servers = JoinSet::new();
        for tcp in metrics_tcp {
            let mut stop = stop.clone();
            let served = axum::serve(tcp, metrics_router.clone())
                .with_graceful_shutdown(async move { raised(&mut stop).await });
            servers.spawn(served.into_future());
        }
        while let Some(served) = servers.join_next().await {
            if let Ok(Err(error)) = served {
                warn!(%error, "metrics server stopped");
            }
        }
    })
}

fn log_ready(
    config: &ServerConfig,
    local_addrs: &[SocketAddr],
    metrics_addrs: &[SocketAddr],
    dev_ca: Option<&Path>,
) {
    if let Some(ca) = dev_ca {
        info!(
            ca = %ca.display(),
            "no --tls-cert: serving a self-signed development certificate for localhost, 127.0.0.1 and ::1; clients trust it with --cacert {}",
            ca.display()
        );
    }
    info!(
        listen = %joined(local_addrs),
        metrics_listen = %joined(metrics_addrs),
        config = %config.policy_file.as_ref().map_or("(default policy)".into(), |p| p.display().to_string()),
        mtls = config.client_ca.is_some(),
        limit_ranges = if config.limit_ranges.is_some() { "watch" } else { "off" },
        "deployguard ready"
    );
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
