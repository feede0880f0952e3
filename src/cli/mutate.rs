//! `deployguard mutate`: print manifests with the Go runtime injection applied to every
//! pod spec (Pods and templates alike), ready to commit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::exclude::Excludes;
use super::inputs::expand;
use super::output::print_json;
use super::requester::RequestArgs;
use super::{CliResult, input_error, policy_from};
use crate::manifest::{
    DEFAULT_NAMESPACE, ManifestError, Scope, collect_limit_ranges, mutate_document_in,
};
use crate::policy::LimitRanges;

#[derive(Debug, Args)]
pub struct MutateArgs {
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "yaml")]
    output: MutateOutput,
    /// The namespace of documents that name none; LimitRanges among the inputs give the
    /// templates of their namespace the limits their pods will have.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    #[command(flatten)]
    request: RequestArgs,
    /// Files, directories (searched for *.yaml, *.yml, *.json) or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MutateOutput {
    Yaml,
    Json,
}

pub fn run(args: MutateArgs) -> CliResult {
    let policy = policy_from(args.config.as_ref())?;
    let inputs = expand(&args.paths, &Excludes::default()).map_err(input_error)?;
    let mut errors = 0;
    let mut json_documents = Vec::new();
    let texts: Vec<_> = inputs
        .iter()
        .filter_map(|input| match input.read() {
            Ok(text) => Some((input, text)),
            Err(error) => {
                eprintln!("deployguard: {error:#}");
                errors += 1;
                None
            }
        })
        .collect();
    let parsed: Vec<_> = texts
        .iter()
        .map(|(input, text)| (*input, input.documents(text)))
        .collect();
    let mut limit_ranges = LimitRanges::default();
    for (input, documents) in &parsed {
        for document in documents.iter().flatten() {
            let Some(value) = &document.value else {
                continue;
            };
            for ManifestError::Unreadable { message, .. } in
                collect_limit_ranges(value, &args.namespace, &mut limit_ranges)
            {
                eprintln!(
                    "deployguard: {}: document {}: {message}",
                    input.name, document.index
                );
                errors += 1;
            }
        }
    }
    let scope = Scope {
        limit_ranges: &limit_ranges,
        default_namespace: &args.namespace,
        context: args.request.context(),
    };
    for (input, documents) in parsed {
        for document in documents {
            let (mut value, original, index) = match document {
                Ok(doc) => match doc.value {
                    Some(value) => (value, doc.text, doc.index),
                    None => continue,
                },
                Err(error) => {
                    eprintln!("deployguard: {}: {error}", input.name);
                    errors += 1;
                    continue;
                }
            };
            let mutation = mutate_document_in(&policy, scope, &mut value);
            for error in &mutation.errors {
                eprintln!("deployguard: {}: document {}: {error}", input.name, index);
                errors += 1;
            }
            let changed = mutation.ops > 0;
            match args.output {
                MutateOutput::Json => json_documents.push(value),
                // Unchanged YAML is printed as written, comments and all (not a document
                // that carries directives: they may only open a stream).
                MutateOutput::Yaml
                    if !changed && !input.is_json() && !original.starts_with('%') =>
                {
                    print_yaml_text(original)
                }
                MutateOutput::Yaml => print_yaml_value(&value).map_err(input_error)?,
            }
        }
    }
    if args.output == MutateOutput::Json {
        print_json(&json_documents);
    }
    Ok(if errors > 0 {
        ExitCode::from(super::EXIT_INPUT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_yaml_text(text: &str) {
    let text = text.trim_start_matches(['\n', '\r']);
    println!("---");
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
}

fn print_yaml_value(value: &Value) -> anyhow::Result<()> {
    let yaml = serde_saphyr::to_string(value).map_err(|e| anyhow!("cannot write YAML: {e}"))?;
    print_yaml_text(&yaml);
    Ok(())
}
