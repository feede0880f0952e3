//! The `deployguard` binary: everything lives in the library.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    deployguard::cli::main()
}
