//! `deployguard serve` without a certificate, as someone trying it on a laptop runs it:
//! logs, shutdown, and the development certificate's directory.

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::clients::*;
use common::process::{Process, text_field};

/// A development server with its CA in `dir` and the `extra` flags; waits until ready.
fn dev_server(dir: &Path, extra: &[&str]) -> (Process, String) {
    let dir = dir.display().to_string();
    let mut args = vec!["--metrics-listen", "127.0.0.1:0", "--dev-cert-dir", &dir];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let mut process = Process::spawn(&args);
    let ready = process.wait_for_line("deployguard ready");
    (process, ready)
}

#[test]
fn logs_are_json_lines_when_not_on_a_terminal_and_ctrl_c_skips_the_drain_delay() {
    let temp = tempfile::tempdir().unwrap();
    // No --log-format: auto, and the test's pipe is not a terminal.
    let (mut process, ready) = dev_server(&temp.path().join("dev"), &[]);
    let line: serde_json::Value = serde_json::from_str(&ready)
        .unwrap_or_else(|error| panic!("not a JSON line ({error}): {ready}"));
    assert_eq!(line["message"], "deployguard ready");

    process.signal("INT");
    let shutting_down = process.wait_for_line("shutting down");
    let shutting_down: serde_json::Value = serde_json::from_str(&shutting_down).unwrap();
    assert_eq!(shutting_down["drain_delay_s"], 0, "{shutting_down}");
    assert_eq!(process.wait_exit().code(), Some(0));
}

#[test]
fn text_logs_when_asked() {
    let temp = tempfile::tempdir().unwrap();
    let (_process, ready) = dev_server(&temp.path().join("dev"), &["--log-format", "text"]);
    assert!(
        serde_json::from_str::<serde_json::Value>(&ready).is_err(),
        "{ready}"
    );
    assert!(ready.contains("deployguard ready"), "{ready}");
}

/// The TLS address a text-logging server's ready line names.
fn listen_addr(ready: &str) -> SocketAddr {
    text_field(ready, "listen").parse().unwrap()
}

/// GET /healthz over TLS for the name `localhost`, trusting only `ca_pem`.
async fn healthz(ca_pem: &str, addr: SocketAddr) -> Result<u16, reqwest::Error> {
    let client = localhost_client(ca_pem, Http::One, addr);
    let url = format!("https://localhost:{}/healthz", addr.port());
    Ok(client.get(url).send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_bind_leaves_the_running_servers_certificate_alone() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("dev");
    let (_first, ready) = dev_server(&dir, &["--log-format", "text"]);
    let addr = listen_addr(&ready);
    let ca_before = std::fs::read(dir.join("ca.crt")).unwrap();
    let files_before = std::fs::read(dir.join("dev.pem")).unwrap();
    let modified = std::fs::metadata(dir.join("ca.crt"))
        .unwrap()
        .modified()
        .unwrap();

    // The README's second `serve` on a port that is taken.
    let taken = addr.to_string();
    let dir_arg = dir.display().to_string();
    let mut second = Process::spawn(&["--listen", &taken, "--dev-cert-dir", &dir_arg]);
    assert_eq!(second.wait_exit().code(), Some(1));
    assert!(second.stderr().contains("cannot listen on"));

    assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), ca_before);
    assert_eq!(std::fs::read(dir.join("dev.pem")).unwrap(), files_before);
    let after = std::fs::metadata(dir.join("ca.crt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(after, modified);
    let ca = String::from_utf8(ca_before).unwrap();
    assert_eq!(healthz(&ca, addr).await.unwrap(), 200);

    // Nor does it create a directory it was pointed at.
    let fresh = temp.path().join("never");
    let fresh_arg = fresh.display().to_string();
    let mut third = Process::spawn(&["--listen", &taken, "--dev-cert-dir", &fresh_arg]);
    assert_eq!(third.wait_exit().code(), Some(1));
    assert!(!fresh.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_keeps_its_certificate_so_the_clients_ca_file_still_works() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("dev");
    let (mut first, _) = dev_server(&dir, &["--log-format", "text"]);
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    first.signal("TERM");
    assert_eq!(first.wait_exit().code(), Some(0));

    let (_second, ready) = dev_server(&dir, &["--log-format", "text"]);
    assert_eq!(healthz(&ca, listen_addr(&ready)).await.unwrap(), 200);
    assert_eq!(std::fs::read_to_string(dir.join("ca.crt")).unwrap(), ca);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_starting_at_once_share_one_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("dev");
    let dir_arg = dir.display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &dir_arg,
        "--log-format",
        "text",
    ];
    let mut one = Process::spawn(&args);
    let mut two = Process::spawn(&args);
    let addrs = [
        listen_addr(&one.wait_for_line("deployguard ready")),
        listen_addr(&two.wait_for_line("deployguard ready")),
    ];
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    for addr in addrs {
        assert_eq!(healthz(&ca, addr).await.unwrap(), 200, "{addr}");
    }
}

#[test]
fn a_development_directory_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let shared = temp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shared_arg = shared.display().to_string();
    let mut process = Process::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &shared_arg,
    ]);
    assert_eq!(process.wait_exit().code(), Some(1));
    let stderr = process.stderr();
    assert!(stderr.contains("other users can write to it"), "{stderr}");
    assert!(!shared.join("ca.crt").exists() && !shared.join("dev.pem").exists());
}
