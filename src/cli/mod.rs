//! The command line: `serve`, `check`, `audit`, `mutate`, `review`, `config`. Each subcommand is a
//! thin door onto the library; this is the binary's edge, where errors become exit codes.

pub mod audit;
mod check;
mod classify;
mod containers;
mod exclude;
mod inputs;
mod locate;
mod mutate;
mod output;
mod report;
mod requester;
mod review;
mod scan;

pub use report::{Format, Report, cluster_reports};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_POLICY_YAML;
use crate::policy::Policy;
use crate::policy_file::load_policy;
use crate::server::{ServeArgs, serve};

/// Exit code for usage, config and input errors (1 is reserved for enforce findings).
const EXIT_INPUT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "deployguard",
    version,
    about = "Kubernetes admission webhook: health probes, resource limits, and a Go runtime sized to its container"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the admission webhook (HTTPS).
    Serve(ServeArgs),
    /// Judge manifests offline; exit 1 when any finding is enforced.
    Check(check::CheckArgs),
    /// Print manifests with GOMAXPROCS/GOMEMLIMIT injected into every pod spec.
    Mutate(mutate::MutateArgs),
    /// Judge what a live cluster runs (kubeconfig); exit 1 when any finding is enforced.
    Audit(audit::AuditArgs),
    /// Answer one AdmissionReview exactly as the webhook would.
    Review(review::ReviewArgs),
    /// Policy file helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the default policy, with a comment on every key.
    Default,
    /// Validate a policy file.
    Validate { file: PathBuf },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_INPUT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| (ExitCode::FAILURE, e.into())),
        Command::Check(args) => check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Mutate(args) => mutate::run(args),
        Command::Review(args) => review::run(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_POLICY_YAML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Validate { file }) => load_policy(&file)
            .map(|_| {
                println!("{}: valid", file.display());
                ExitCode::SUCCESS
            })
            .map_err(input_error),
    };
    result.unwrap_or_else(|(code, error): (ExitCode, anyhow::Error)| {
        eprintln!("deployguard: {error:#}");
        code
    })
}

type CliResult = Result<ExitCode, (ExitCode, anyhow::Error)>;

fn input_error(error: impl Into<anyhow::Error>) -> (ExitCode, anyhow::Error) {
    (ExitCode::from(EXIT_INPUT_ERROR), error.into())
}

/// The policy from `--config`, or the built-in default.
fn policy_from(config: Option<&PathBuf>) -> Result<Policy, (ExitCode, anyhow::Error)> {
    config.map_or_else(
        || Ok(Policy::default()),
        |path| load_policy(path).map_err(input_error),
    )
}
