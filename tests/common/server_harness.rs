//! Shared by the `server_*` tests: certificates made with rcgen, a kubelet-style volume
//! directory, the server started in-process on loopback, HTTPS clients that verify the CA,
//! a raw HTTP/1.1-over-TLS client for what reqwest cannot send, and a metrics parser.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use deployguard::server::{RunningServer, ServeArgs, ServerConfig, start};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound of every wait in these tests; reaching it is a failure, never a pass.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

// ---------------------------------------------------------------- certificates

pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A test CA that signs server and client certificates.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
        }
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, year: i32) -> CertPair {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A serving certificate for localhost and 127.0.0.1 that expires on 1 January of `year`.
    pub fn server(&self, year: i32) -> CertPair {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            year,
        )
    }

    pub fn client(&self, name: &str) -> CertPair {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth, 2090)
    }
}

/// Unix time of 1 January of `year`, as the expiry gauge shows it.
pub fn new_year(year: i32) -> i64 {
    rcgen::date_time_ymd(year, 1, 1).unix_timestamp()
}

pub fn der_of(cert_pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .unwrap()
        .to_vec()
}

// ------------------------------------------------------- kubelet-style volume

/// A directory laid out like a mounted Secret or ConfigMap: `NAME -> ..data/NAME`,
/// `..data -> ..gen_N/`. `update` swaps `..data` atomically, as the kubelet does.
pub struct Volume {
    pub dir: PathBuf,
    generation: u32,
}

impl Volume {
    pub fn new(dir: &Path, files: &[(&str, &[u8])]) -> Volume {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = Volume {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        volume.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        volume
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        let old = self.generation;
        self.generation += 1;
        let generation = format!("..gen_{}", self.generation);
        let target = self.dir.join(&generation);
        std::fs::create_dir(&target).unwrap();
        for (name, bytes) in files {
            std::fs::write(target.join(name), bytes).unwrap();
        }
        let temporary = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &temporary).unwrap();
        std::fs::rename(&temporary, self.dir.join("..data")).unwrap();
        if old > 0 {
            std::fs::remove_dir_all(self.dir.join(format!("..gen_{old}"))).unwrap();
        }
    }
}

// ------------------------------------------------------------------- server

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

// ------------------------------------------------------------------ clients

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    One,
    Two,
}

pub const BOTH: [Http; 2] = [Http::One, Http::Two];

fn builder(ca_pem: &str, http: Http) -> reqwest::ClientBuilder {
    install_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .tls_info(true)
        .timeout(PATIENCE);
    match http {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    }
}

/// An HTTPS client that trusts only `ca_pem` and speaks exactly `http`.
pub fn client(ca_pem: &str, http: Http) -> reqwest::Client {
    builder(ca_pem, http).build().unwrap()
}

/// The same with a client certificate.
pub fn client_with_identity(ca_pem: &str, http: Http, identity: &CertPair) -> reqwest::Client {
    let pem = format!("{}{}", identity.cert_pem, identity.key_pem);
    let identity = reqwest::Identity::from_pem(pem.as_bytes()).unwrap();
    builder(ca_pem, http).identity(identity).build().unwrap()
}

pub fn expected_version(http: Http) -> reqwest::Version {
    match http {
        Http::One => reqwest::Version::HTTP_11,
        Http::Two => reqwest::Version::HTTP_2,
    }
}

/// POSTs `body` and returns status, content type and body, checking the HTTP version.
pub async fn post(
    client: &reqwest::Client,
    http: Http,
    url: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    assert_eq!(response.version(), expected_version(http), "POST {url}");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.unwrap().to_vec();
    (status, content_type, body)
}

pub async fn get_status(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// A TLS connection speaking HTTP/1.1, for requests reqwest cannot make (a body that
/// never comes, headers that stop half-way).
pub async fn raw_connect(addr: SocketAddr, ca_pem: &str) -> TlsStream<TcpStream> {
    raw_connect_with(addr, ca_pem, rustls::DEFAULT_VERSIONS)
        .await
        .unwrap()
}

/// The same, offering only the TLS `versions` given.
pub async fn raw_connect_with(
    addr: SocketAddr,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls_over(tcp, ca_pem, versions).await
}

/// TLS speaking HTTP/1.1 over a TCP connection made by the caller, verifying `ca_pem`.
pub async fn tls_over(
    tcp: TcpStream,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
    connector.connect(name, tcp).await
}

/// The head of an HTTP/1.1 JSON POST of `length` body bytes.
pub fn post_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

pub struct RawResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Reads one HTTP/1.1 response (Content-Length framed); None if the server closed first.
pub async fn raw_response<R: AsyncRead + Unpin>(stream: &mut R) -> Option<RawResponse> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Returns once nothing accepts connections on `addr` any more.
pub async fn wait_until_listener_closed(addr: SocketAddr) {
    eventually("the listener closed", || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
}

/// True once the server has closed the connection (EOF or reset), within PATIENCE.
pub async fn closed_by_server(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.is_ok()
}

pub async fn raw_send(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

// ------------------------------------------------------------------ metrics

/// Name, labels and value of one sample.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Samples of one scrape, after checking the text is well-formed OpenMetrics.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// The sum of the samples named `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

pub async fn scrape(addr: SocketAddr) -> Metrics {
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .unwrap()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let samples = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Metrics { text, samples }
}

/// A strict reader of the OpenMetrics text format as far as these metrics use it: every
/// sample belongs to a family declared by `# TYPE`, names and labels are well-formed,
/// values are numbers, and the text ends with `# EOF`.
pub fn parse_openmetrics(text: &str) -> Result<Vec<Sample>, String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if saw_eof {
            return Err(format!("text after # EOF: {line:?}"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !valid_name(name) {
                return Err(format!("bad metric name in {line:?}"));
            }
            match keyword {
                "TYPE" => {
                    let kind = parts.next().unwrap_or("");
                    if ![
                        "counter",
                        "gauge",
                        "histogram",
                        "info",
                        "stateset",
                        "unknown",
                        "summary",
                        "gaugehistogram",
                    ]
                    .contains(&kind)
                    {
                        return Err(format!("bad type in {line:?}"));
                    }
                    families.insert(name.to_owned(), kind.to_owned());
                }
                "HELP" | "UNIT" => {}
                _ => return Err(format!("unknown comment {line:?}")),
            }
            continue;
        }
        let (name_and_labels, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("no value in {line:?}"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value in {line:?}"))?;
        let (name, labels) = match name_and_labels.split_once('{') {
            None => (name_and_labels, BTreeMap::new()),
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .ok_or_else(|| format!("unclosed labels in {line:?}"))?;
                let mut parsed = BTreeMap::new();
                for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                    let (key, value) = pair
                        .split_once("=\"")
                        .ok_or_else(|| format!("bad label in {line:?}"))?;
                    if !valid_name(key) {
                        return Err(format!("bad label name in {line:?}"));
                    }
                    parsed.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
                }
                (name, parsed)
            }
        };
        if !valid_name(name) {
            return Err(format!("bad sample name in {line:?}"));
        }
        let family = families
            .iter()
            .filter(|(family, _)| name.starts_with(family.as_str()))
            .max_by_key(|(family, _)| family.len())
            .ok_or_else(|| format!("sample without a # TYPE: {line:?}"))?;
        let suffix = &name[family.0.len()..];
        let allowed: &[&str] = match family.1.as_str() {
            "counter" => &["_total", "_created"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &["", "_total", "_bucket", "_sum", "_count", "_info"],
        };
        if !allowed.contains(&suffix) {
            return Err(format!(
                "sample {name} does not fit its {} family",
                family.1
            ));
        }
        samples.push((name.to_owned(), labels, value));
    }
    if !saw_eof {
        return Err("no # EOF at the end".to_owned());
    }
    Ok(samples)
}

// -------------------------------------------------------------------- misc

/// Polls `check` until it returns Some, failing the test after PATIENCE.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every AdmissionReview of the corpus (bare AdmissionRequests wrapped) and the examples.
pub fn admission_reviews() -> Vec<(String, Vec<u8>)> {
    let mut reviews = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.push(repo_path("examples/admission-review.json"));
    paths.push(repo_path("examples/admission-review-denied.json"));
    paths.push(repo_path("examples/admission-review-resize.json"));
    paths.push(repo_path("examples/admission-review-reinvocation.json"));
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if value["kind"] == "AdmissionReview" {
            reviews.push((name, bytes));
        } else if value.get("uid").is_some() && value.get("operation").is_some() {
            let wrapped = serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": value,
            });
            reviews.push((name, serde_json::to_vec(&wrapped).unwrap()));
        }
    }
    reviews
}

/// `deployguard review` on `body`: the bytes the CLI prints, without its final newline.
pub fn cli_review(endpoint: &str, config: Option<&Path>, body: &[u8]) -> Vec<u8> {
    cli_review_result(endpoint, config, body)
        .unwrap_or_else(|e| panic!("deployguard review failed: {e}"))
}

/// The same, or the reason the CLI gives for refusing the input (exit code 2).
pub fn cli_review_result(
    endpoint: &str,
    config: Option<&Path>,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployguard"));
    command.args(["review", "--endpoint", endpoint]);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    if output.status.code() == Some(2) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .trim_end()
            .strip_prefix("deployguard: -: ")
            .unwrap_or_else(|| panic!("unexpected CLI error: {stderr}"));
        return Err(reason.to_owned());
    }
    assert!(
        output.status.success(),
        "deployguard review failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut stdout = output.stdout;
    if stdout.last() == Some(&b'\n') {
        stdout.pop();
    }
    Ok(stdout)
}

/// PEM of the certificate the server presented on this response's connection.
pub fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

pub fn private_key_is_valid(pem: &str) -> bool {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).is_ok()
}

// ------------------------------------------------- load and slow bodies (robustness)

/// How a looping client of a [`Load`] connects: one client reused for every request
/// (keep-alive), or a new client, so a new connection and handshake, for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    KeepAlive,
    Fresh,
}

/// Keep-alive and fresh-connection clients over both HTTP versions.
pub const EVERY_CLIENT: [(Http, Reuse); 4] = [
    (Http::One, Reuse::KeepAlive),
    (Http::Two, Reuse::KeepAlive),
    (Http::One, Reuse::Fresh),
    (Http::Two, Reuse::Fresh),
];

/// What one request of a [`Load`] got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index of the looping client in the list given to [`Load::start`].
    pub client: usize,
    pub http: Http,
    pub reuse: Reuse,
    /// Index of the request in the list given to [`Load::start`].
    pub request: usize,
    pub started: std::time::Instant,
    pub took: Duration,
    /// Status, body and the certificate presented on the connection; or the error.
    pub result: Result<(u16, Vec<u8>, Vec<u8>), String>,
}

/// Clients looping POSTs until stopped, each request's outcome recorded in completion order.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    outcomes: Arc<std::sync::Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One task per `clients` entry, each POSTing the `requests` (path, body) in turn, from a
    /// different starting point, to `https://addr`, verifying `ca_pem`.
    pub fn start(
        addr: SocketAddr,
        ca_pem: &str,
        clients: &[(Http, Reuse)],
        requests: &[(&'static str, Vec<u8>)],
    ) -> Load {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(requests.to_vec());
        let tasks = clients
            .iter()
            .enumerate()
            .map(|(index, &(http, reuse))| {
                let (stop, outcomes, requests) = (stop.clone(), outcomes.clone(), requests.clone());
                let ca_pem = ca_pem.to_owned();
                tokio::spawn(async move {
                    let kept = client(&ca_pem, http);
                    let mut turn = index;
                    while !stop.load(Ordering::SeqCst) {
                        let request = turn % requests.len();
                        turn += 1;
                        let (path, body) = &requests[request];
                        let started = std::time::Instant::now();
                        let fresh;
                        let client = match reuse {
                            Reuse::KeepAlive => &kept,
                            Reuse::Fresh => {
                                fresh = client(&ca_pem, http);
                                &fresh
                            }
                        };
                        let result =
                            load_request(client, http, &format!("https://{addr}{path}"), body)
                                .await;
                        outcomes.lock().unwrap().push(Outcome {
                            client: index,
                            http,
                            reuse,
                            request,
                            started,
                            took: started.elapsed(),
                            result,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    /// How many requests have completed.
    pub fn len(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }

    /// The outcomes of the requests completed after the first `from`.
    pub fn since(&self, from: usize) -> Vec<Outcome> {
        self.outcomes.lock().unwrap()[from..].to_vec()
    }

    /// Waits until every client has completed `count` more requests.
    pub async fn more(&self, count: usize) {
        let per_client = || {
            let outcomes = self.outcomes.lock().unwrap();
            let mut counts = vec![0; self.tasks.len()];
            for outcome in outcomes.iter() {
                counts[outcome.client] += 1;
            }
            counts
        };
        let targets: Vec<usize> = per_client().iter().map(|done| done + count).collect();
        eventually(
            &format!("{count} more requests from every client of the load"),
            || async {
                let counts = per_client();
                counts
                    .iter()
                    .zip(&targets)
                    .all(|(done, target)| done >= target)
                    .then_some(())
            },
        )
        .await;
    }

    /// Stops the clients (each finishes the request it is making) and returns every outcome.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.tasks {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("a looping client did not stop")
                .unwrap();
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

async fn load_request(
    client: &reqwest::Client,
    http: Http,
    url: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>, Vec<u8>), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if response.version() != expected_version(http) {
        return Err(format!("answered over {:?}", response.version()));
    }
    let status = response.status().as_u16();
    let cert = peer_certificate(&response);
    let body = response.bytes().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, body.to_vec(), cert))
}

/// The outcomes that are not a 200 with `expected[request]` as the body, described.
pub fn wrong_answers(outcomes: &[Outcome], expected: &[Vec<u8>]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|outcome| {
            let what = format!(
                "client {} ({:?} {:?}) request {}",
                outcome.client, outcome.http, outcome.reuse, outcome.request
            );
            match &outcome.result {
                Err(error) => Some(format!("{what}: failed: {error}")),
                Ok((status, _, _)) if *status != 200 => Some(format!("{what}: status {status}")),
                Ok((_, body, _)) if *body != expected[outcome.request] => Some(format!(
                    "{what}: a different answer: {}",
                    String::from_utf8_lossy(body)
                )),
                Ok(_) => None,
            }
        })
        .collect()
}

pub const DENIED: &str = "admission-review-denied.json";
pub const ALLOWED: &str = "admission-review.json";

/// A real AdmissionReview of the corpus, by file name.
pub fn corpus_review(name: &str) -> Vec<u8> {
    admission_reviews()
        .into_iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no {name} among the AdmissionReviews"))
        .1
}

/// What the well-behaved clients send: a review that is denied and one that is patched.
pub fn normal_requests() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("/validate", corpus_review(DENIED)),
        ("/mutate", corpus_review(ALLOWED)),
    ]
}

/// What `deployguard review` prints for each request under `config`: the only right answers.
pub fn cli_answers(requests: &[(&'static str, Vec<u8>)], config: Option<&Path>) -> Vec<Vec<u8>> {
    requests
        .iter()
        .map(|(path, body)| cli_review(path.trim_start_matches('/'), config, body))
        .collect()
}

/// The chart's default `timeoutSeconds`: an answer later than this is a failed admission
/// call, however right it is. (A correctness bound, orders of magnitude above the
/// milliseconds a review takes; speed itself is measured in BENCHMARKS.md.)
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Every outcome is the right answer, within [`WEBHOOK_TIMEOUT`], and every client of
/// [`EVERY_CLIENT`] made requests.
pub fn assert_all_answered(outcomes: &[Outcome], expected: &[Vec<u8>]) {
    let wrong = wrong_answers(outcomes, expected);
    assert!(
        wrong.is_empty(),
        "{} of {} requests failed or were answered wrongly; the first ones:\n{}",
        wrong.len(),
        outcomes.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    for client in 0..EVERY_CLIENT.len() {
        assert!(
            outcomes.iter().any(|outcome| outcome.client == client),
            "client {client} made no request"
        );
    }
    let slowest = outcomes.iter().map(|outcome| outcome.took).max();
    assert!(
        slowest < Some(WEBHOOK_TIMEOUT),
        "the slowest of {} answers took {slowest:?}, past the webhook timeout",
        outcomes.len()
    );
}

/// A request body whose chunks the test hands over one by one; it ends when the sender is
/// dropped. `send` returns once the previous chunk was taken, and fails once the client has
/// given up on the body.
pub fn body_channel() -> (tokio::sync::mpsc::Sender<hyper::body::Bytes>, reqwest::Body) {
    struct ChannelBody(tokio::sync::mpsc::Receiver<hyper::body::Bytes>);
    impl hyper::body::Body for ChannelBody {
        type Data = hyper::body::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
        }
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    (sender, reqwest::Body::wrap(ChannelBody(receiver)))
}
