//! `deployguard check`: judge manifests offline, exactly as the webhook would on CREATE,
//! and print what was found in one of the report formats.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::exclude::Excludes;
use super::inputs::expand;
use super::report::{self, Format};
use super::requester::RequestArgs;
use super::scan::{Options, scan};
use super::{CliResult, input_error, policy_from};
use crate::evaluate::DEFAULT_NAMESPACE;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: Format,
    /// The namespace of documents that name none; LimitRanges among the inputs apply to
    /// the workloads of their namespace.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    #[command(flatten)]
    request: RequestArgs,
    /// Leave out files and directories matching GLOB (repeatable). Without `/` it matches
    /// any file or directory name (`*.json`, `templates`); with `/`, the path from its
    /// start (`charts/*/templates`, `**/testdata/**`).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Fail (exit 2) on files that are not manifests (data files, YAML without `kind`,
    /// Helm templates) instead of reporting them as skipped.
    #[arg(long)]
    strict_inputs: bool,
    /// Files, directories (searched for *.yaml, *.yml, *.json) or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
}

pub fn run(args: CheckArgs) -> CliResult {
    let policy = policy_from(args.config.as_ref())?;
    let excludes = Excludes::new(&args.exclude).map_err(input_error)?;
    let inputs = expand(&args.paths, &excludes).map_err(input_error)?;
    let options = Options {
        namespace: &args.namespace,
        strict_inputs: args.strict_inputs,
        context: args.request.context(),
    };
    let report = scan(&policy, &inputs, options);
    report::print(&report, args.output);
    Ok(if report.summary.errors > 0 {
        ExitCode::from(super::EXIT_INPUT_ERROR)
    } else if report.summary.enforce > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
