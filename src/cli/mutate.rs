//! `deployguard mutate`: print manifests with the Go runtime injection applied to every
//! pod spec (Pods and templates alike), ready to commit.

use std::path::PathBuf;

mod stream;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::exclude::Excludes;
use super::inputs::expand;
use super::output::print_json;
use super::requester::RequestArgs;
use super::{CliResult, input_error, policy_from};
use crate::evaluate::DEFAULT_NAMESPACE;
use crate::manifest::{ManifestError, Scope, collect_limit_ranges, mutate_document_in};
use crate::policy::LimitRanges;
use crate::yaml_edit::edit_mutated;
use stream::{YamlStream, replacement};

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
        .map(|(input, text)| (*input, text.as_str(), input.documents(text)))
        .collect();
    let mut limit_ranges = LimitRanges::default();
    for (input, _, documents) in &parsed {
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
    let mut stream = YamlStream::default();
    let scope = Scope {
        limit_ranges: &limit_ranges,
        default_namespace: &args.namespace,
        context: args.request.context(),
    };
    for (input, text, documents) in parsed {
        // Where this file's changed documents stand, and their new text.
        let mut replaced = Vec::new();
        for document in documents {
            let (mut value, original, offset, index) = match document {
                Ok(doc) => match doc.value {
                    Some(value) => (value, doc.text, doc.offset, doc.index),
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
            match args.output {
                MutateOutput::Json => json_documents.push(value),
                // JSON input is re-serialised; YAML keeps its text, edited in place.
                MutateOutput::Yaml if input.is_json() => {
                    stream.value(&value).map_err(input_error)?
                }
                MutateOutput::Yaml if mutation.ops == 0 => {}
                MutateOutput::Yaml => {
                    let new = match edit_mutated(original, &mutation, &value) {
                        Ok(new) => new,
                        Err(error) => {
                            eprintln!(
                                "deployguard: {}: document {index}: rewritten without its \
                                 comments and layout ({error})",
                                input.name
                            );
                            replacement(text, offset, &value).map_err(input_error)?
                        }
                    };
                    replaced.push((offset..offset + original.len(), new));
                }
            }
        }
        if args.output == MutateOutput::Yaml && !input.is_json() {
            stream.file(text, replaced);
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
