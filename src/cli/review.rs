//! `deployguard review`: one AdmissionReview in, the exact response the webhook sends out.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{CliResult, input_error, policy_from};
use crate::admission::{Cluster, Endpoint, review};
use crate::config::utc_date;

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which webhook endpoint answers.
    #[arg(long, value_enum, default_value = "validate")]
    endpoint: EndpointArg,
    /// The date (UTC, YYYY-MM-DD) grants expire by; today when absent. The requester is
    /// the request's own `userInfo`.
    #[arg(long, value_name = "DATE", value_parser = utc_date)]
    at: Option<jiff::civil::Date>,
    /// An AdmissionReview JSON file, or `-` for stdin.
    #[arg(default_value = "-")]
    file: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EndpointArg {
    Validate,
    Mutate,
}

pub fn run(args: ReviewArgs) -> CliResult {
    let policy = policy_from(args.config.as_ref())?;
    let body = if args.file == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
            .context("cannot read standard input")
            .map_err(input_error)?;
        body
    } else {
        std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file))
            .map_err(input_error)?
    };
    let endpoint = match args.endpoint {
        EndpointArg::Validate => Endpoint::Validate,
        EndpointArg::Mutate => Endpoint::Mutate,
    };
    let today = args.at.unwrap_or_else(crate::clock::today_utc);
    let outcome = review(&policy, Cluster::bare(today), endpoint, &body)
        .with_context(|| args.file.clone())
        .map_err(input_error)?;
    let mut stdout = std::io::stdout().lock();
    // The body is printed byte for byte as the server sends it, then a newline.
    let _ = stdout
        .write_all(&outcome.body)
        .and_then(|()| stdout.write_all(b"\n"));
    Ok(ExitCode::SUCCESS)
}
