//! The `xform` binary: parse the command line, run it, exit with its code.

fn main() {
    std::process::exit(xform::cli::run(std::env::args_os()));
}
