//! The `xform` binary: parse the command line, run it, exit with its code.

// sqlparser and the renderer allocate many small strings; mimalloc compiles a 10,000-model
// project about a fifth faster than the system allocator, within the same memory budget.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(xform::cli::run(std::env::args_os()).code());
}
