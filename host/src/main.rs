//! The `ggen` binary: parse, dispatch to the domain, print.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
