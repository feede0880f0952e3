//! Every user-facing error we know, through the built binary: each says its cause once, in
//! our words (no parser or TLS library internals), with one position.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;

use common::pki::Pki;

/// Texts that only make sense to someone reading a library's source.
const INTERNAL: [&str; 8] = [
    "DuplicateKeyPolicy",
    "Options",
    "budget breached",
    "Nodes {",
    "KeyMismatch",
    "-->",
    "no items found",
    "section end marker",
];

/// `deployguard ARGS` in `dir`: exit code and stderr.
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_deployguard"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The checks every error line passes.
fn said_once(case: &str, line: &str) {
    // A cause repeated: the same part on both sides of a `: ` somewhere in the chain.
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        if part.len() >= 6 {
            assert!(
                !parts[i + 1..].contains(part),
                "{case}: {part:?} is said twice: {line}"
            );
        }
    }
    assert!(line.matches("(os error").count() <= 1, "{case}: {line}");
    for hint in INTERNAL {
        assert!(
            !line.contains(hint),
            "{case}: library internals ({hint}): {line}"
        );
    }
    // `file.yaml:12:` or `line 12`.
    let file_lines = line
        .match_indices(".yaml:")
        .filter(|(at, _)| line[at + 6..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    let lines = line.matches(" line ").count() + file_lines;
    assert!(lines <= 1, "{case}: more than one line number: {line}");
    assert!(
        line.matches("column").count() <= 1,
        "{case}: more than one column: {line}"
    );
}

/// Runs `args`, expects exit `code` and an error line naming `expect`, then [`said_once`].
fn expect_error(dir: &Path, case: &str, args: &[&str], code: i32, expect: &str) {
    let (status, stderr) = run(dir, args);
    assert_eq!(status, Some(code), "{case}: {stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains(expect))
        .unwrap_or_else(|| panic!("{case}: no line with {expect:?} in:\n{stderr}"));
    said_once(case, line);
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Ten levels of ten aliases each: a few hundred bytes that expand to 10^10 nodes.
fn alias_bomb() -> String {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut previous = "a".to_owned();
    for i in 0..9 {
        let refs = vec![format!("*{previous}"); 10].join(", ");
        text.push_str(&format!("b{i}: &b{i} [{refs}]\n"));
        previous = format!("b{i}");
    }
    text
}

const POD_12MB: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources: {limits: {memory: 12Mb}}\n";

#[test]
fn input_and_policy_errors_are_said_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    write(dir, "pod.yaml", POD_12MB);
    write(dir, "dup.yaml", "a: 1\na: 2\n");
    write(
        dir,
        "dup-policy.yaml",
        "defaultMode: warn\ndefaultMode: audit\n",
    );
    write(dir, "bomb.yaml", &alias_bomb());
    write(
        dir,
        "deep.yaml",
        &format!("{}{}\n", "[".repeat(300), "]".repeat(300)),
    );
    write(dir, "deep-map.yaml", &format!("a: {}\n", " [".repeat(300)));
    write(dir, "bad.yaml", "a: [\n");
    write(dir, "colon.yaml", "a: b: c\n");
    write(dir, "unknown-key.yaml", "defaultMod: warn\n");
    write(dir, "bad-mode.yaml", "defaultMode: sometimes\n");
    std::fs::create_dir(dir.join("a-directory.yaml")).unwrap();

    for (case, args, code, expect) in [
        ("bad quantity", &["check", "pod.yaml"][..], 2, "12Mb"),
        (
            "missing input",
            &["check", "nonexist.yaml"],
            2,
            "nonexist.yaml",
        ),
        (
            "duplicate key",
            &["check", "dup.yaml"],
            2,
            "duplicate key `a`",
        ),
        ("alias bomb", &["check", "bomb.yaml"], 2, "aliases"),
        ("deep nesting", &["check", "deep.yaml"], 2, "deep.yaml"),
        (
            "deep nesting in a map",
            &["check", "deep-map.yaml"],
            2,
            "deep-map.yaml",
        ),
        ("unclosed bracket", &["check", "bad.yaml"], 2, "bad.yaml"),
        ("misplaced colon", &["check", "colon.yaml"], 2, "colon.yaml"),
        (
            "missing policy",
            &["check", "--config", "nonexist.yaml", "pod.yaml"],
            2,
            "nonexist.yaml",
        ),
        (
            "policy is a directory",
            &["check", "--config", "a-directory.yaml", "pod.yaml"],
            2,
            "a-directory.yaml",
        ),
        (
            "policy duplicate key",
            &["check", "--config", "dup-policy.yaml", "pod.yaml"],
            2,
            "duplicate key `defaultMode`",
        ),
        (
            "policy alias bomb",
            &["check", "--config", "bomb.yaml", "pod.yaml"],
            2,
            "aliases",
        ),
        (
            "policy deep nesting",
            &["check", "--config", "deep.yaml", "pod.yaml"],
            2,
            "deep.yaml",
        ),
        (
            "policy bad YAML",
            &["check", "--config", "colon.yaml", "pod.yaml"],
            2,
            "colon.yaml",
        ),
        (
            "policy unknown key",
            &["check", "--config", "unknown-key.yaml", "pod.yaml"],
            2,
            "defaultMod",
        ),
        (
            "policy bad mode",
            &["check", "--config", "bad-mode.yaml", "pod.yaml"],
            2,
            "sometimes",
        ),
        (
            "bad flag value",
            &["check", "--output", "pdf", "pod.yaml"],
            2,
            "pdf",
        ),
        (
            "unknown flag",
            &["check", "--frobnicate", "pod.yaml"],
            2,
            "frobnicate",
        ),
        (
            "review of a missing file",
            &["review", "nonexist.json"],
            2,
            "nonexist.json",
        ),
        ("review of bad JSON", &["review", "bad.yaml"], 2, "bad.yaml"),
    ] {
        expect_error(dir, case, args, code, expect);
    }
}

#[test]
fn server_start_errors_are_said_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let (one, other) = (Pki::new("one"), Pki::new("other"));
    let (pair, other_pair) = (one.server(2090), other.server(2090));
    write(dir, "tls.crt", &pair.cert_pem);
    write(dir, "tls.key", &pair.key_pem);
    write(dir, "other.key", &other_pair.key_pem);
    write(dir, "empty.pem", "");
    write(
        dir,
        "broken.crt",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    );
    write(dir, "policy.yaml", "defaultMode: sometimes\n");
    write(dir, "bomb.yaml", &alias_bomb());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let dev = dir.join("dev").display().to_string();
    // The flags given, then the defaults for those not given.
    let serve = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["serve".to_owned()];
        args.extend(extra.iter().map(|a| a.to_string()));
        for (flag, value) in [
            ("--listen", "127.0.0.1:0"),
            ("--metrics-listen", "127.0.0.1:0"),
            ("--dev-cert-dir", dev.as_str()),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args
    };
    let cert = ["--tls-cert", "tls.crt", "--tls-key"];
    let cases: Vec<(&str, Vec<String>, i32, &str)> = vec![
        (
            "missing certificate",
            serve(&["--tls-cert", "nonexist.crt", "--tls-key", "tls.key"]),
            1,
            "nonexist.crt",
        ),
        (
            "missing key",
            serve(&[cert[0], cert[1], cert[2], "nonexist.key"]),
            1,
            "nonexist.key",
        ),
        (
            "no certificate in the file",
            serve(&["--tls-cert", "empty.pem", "--tls-key", "tls.key"]),
            1,
            "empty.pem",
        ),
        (
            "broken certificate",
            serve(&["--tls-cert", "broken.crt", "--tls-key", "tls.key"]),
            1,
            "broken.crt",
        ),
        (
            "no key in the file",
            serve(&[cert[0], cert[1], cert[2], "empty.pem"]),
            1,
            "empty.pem",
        ),
        (
            "key of another certificate",
            serve(&[cert[0], cert[1], cert[2], "other.key"]),
            1,
            "does not belong",
        ),
        (
            "missing client CA",
            serve(&["--client-ca", "nonexist-ca.crt"]),
            1,
            "nonexist-ca.crt",
        ),
        (
            "missing policy",
            serve(&["--config", "nonexist.yaml"]),
            1,
            "nonexist.yaml",
        ),
        (
            "invalid policy",
            serve(&["--config", "policy.yaml"]),
            1,
            "sometimes",
        ),
        (
            "policy alias bomb",
            serve(&["--config", "bomb.yaml"]),
            1,
            "aliases",
        ),
        (
            // Checked as the command line is read: a usage error, like a bad address.
            "zero connections",
            serve(&["--max-connections", "0"]),
            2,
            "--max-connections",
        ),
        (
            "not an address",
            serve(&["--metrics-listen", "::1:9090"]),
            2,
            "brackets",
        ),
        (
            "unresolvable host",
            serve(&["--metrics-listen", "nonexistent.invalid:9090"]),
            1,
            "nonexistent.invalid",
        ),
        ("not a number", serve(&["--drain-delay", "soon"]), 2, "soon"),
    ];
    for (case, args, code, expect) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_error(dir, case, &args, code, expect);
    }
    let in_use = [
        "serve",
        "--listen",
        &taken,
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &dev,
    ];
    expect_error(dir, "port in use", &in_use, 1, "cannot listen on");
}
