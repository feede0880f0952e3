//! `deployguard review` run as a child process: the answers the server must give.

use std::path::Path;

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

/// What `deployguard review` prints for each request under `config`: the only right answers.
pub fn cli_answers(requests: &[(&'static str, Vec<u8>)], config: Option<&Path>) -> Vec<Vec<u8>> {
    requests
        .iter()
        .map(|(path, body)| cli_review(path.trim_start_matches('/'), config, body))
        .collect()
}
