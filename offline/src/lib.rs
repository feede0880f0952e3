//! deployguard's offline door: what `check` and `mutate` do with files. [`documents`]
//! splits a file into YAML or JSON documents with their lines, [`manifest`] judges and
//! mutates each document through the engine (`deployguard-engine`), and [`yaml_edit`]
//! writes a mutation back into the YAML text in place, keeping comments and layout.

pub mod documents;
pub mod manifest;
pub mod yaml_edit;
