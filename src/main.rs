//! The `deployguard` binary: everything lives in the library.

#![forbid(unsafe_code)]

/// A request allocates and frees hundreds of small JSON nodes; mimalloc's thread-local
/// free lists make that cheaper than glibc's malloc (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    deployguard::cli::main()
}
