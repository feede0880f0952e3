//! `deployguard audit`: judge what a live cluster runs, read through the user's
//! kubeconfig, with the engine and the report formats of `check`. This file is the thin
//! layer (flags, kubeconfig, exit codes); [`audit`] takes a `kube::Client` and is what the
//! tests drive against an in-process API server.

mod apply;
mod collect;
mod kinds;
mod owners;
mod progress;
mod read;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use jiff::civil::Date;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use apply::{FIELD_MANAGER, apply_reports};
pub use collect::{AuditError, Options, Targets, audit};
pub use progress::Progress;
pub use read::PAGE_SIZE;

use super::report::{self, Format};
use super::{CliResult, EXIT_INPUT_ERROR, input_error, policy_from};
use crate::config::utc_date;
use crate::policy::RequestContext;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The kubeconfig context to use; the current context when absent.
    #[arg(long)]
    context: Option<String>,
    /// Audit NAMESPACE (repeatable); the context's namespace when absent.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    namespace: Vec<String>,
    /// Audit every namespace.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    all_namespaces: bool,
    #[arg(long, value_enum, default_value = "text")]
    output: Format,
    /// Write the PolicyReports (with `--output openreports`, the Reports) to the cluster
    /// by server-side apply, field manager `deployguard`.
    #[arg(long)]
    apply_reports: bool,
    /// The date (UTC, YYYY-MM-DD) grants expire by; today when absent.
    #[arg(long, value_name = "DATE", value_parser = utc_date)]
    at: Option<Date>,
}

pub fn run(args: AuditArgs) -> CliResult {
    let policy = policy_from(args.config.as_ref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(input_error)?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    runtime.block_on(async {
        let (client, namespace) = client(args.context.as_deref()).await.map_err(input_error)?;
        let targets = if args.all_namespaces {
            Targets::AllNamespaces
        } else if args.namespace.is_empty() {
            Targets::Namespaces(vec![namespace])
        } else {
            Targets::Namespaces(args.namespace.clone())
        };
        let options = Options {
            targets,
            context: RequestContext {
                requester: None,
                today: Some(args.at.unwrap_or_else(crate::clock::today_utc)),
            },
            page_size: PAGE_SIZE,
        };
        let report = audit(&client, &policy, &options, &mut Progress::stderr())
            .await
            .map_err(input_error)?;
        report::print(&report, args.output);
        let mut failed = report.summary.errors > 0;
        if args.apply_reports {
            let objects = report::cluster_reports(&report, args.output);
            for failure in apply_reports(&client, &objects).await {
                eprintln!("deployguard: {failure}");
                failed = true;
            }
        }
        Ok(if failed {
            ExitCode::from(EXIT_INPUT_ERROR)
        } else if report.summary.enforce > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// A client as kubectl would build it: KUBECONFIG (or ~/.kube/config) and `context`, or
/// without a kubeconfig the in-cluster service account; and the context's namespace.
async fn client(context: Option<&str>) -> anyhow::Result<(kube::Client, String)> {
    let config = match context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.to_owned()),
                ..KubeConfigOptions::default()
            };
            let kubeconfig = Kubeconfig::read().context("cannot read the kubeconfig")?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("kubeconfig context {context:?}"))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes API to audit (no usable KUBECONFIG, ~/.kube/config or in-cluster service account)")?,
    };
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("cannot set up the Kubernetes client")?;
    Ok((client, namespace))
}
