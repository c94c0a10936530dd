//! The `ballast` command line: parse, dispatch, map the result to an exit code.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = ballast::cli::Cli::parse();
    ballast::logging::init(cli.global.log_format);
    let code = match ballast::commands::dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            ballast::errln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
