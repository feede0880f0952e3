//! `deployguard serve` without a certificate, as someone trying it on a laptop runs it:
//! logs, shutdown, and the development certificate's directory.

#[path = "common/server_harness.rs"]
mod harness;
#[path = "common/process_harness.rs"]
mod process;

use process::Process;

/// A development server with its CA in `dir` and the `extra` flags; waits until ready.
fn dev_server(dir: &std::path::Path, extra: &[&str]) -> (Process, String) {
    let dir = dir.display().to_string();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &dir,
    ];
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
