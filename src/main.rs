//! `dpsbench`: parse the command line, run it, map errors to exit code 2 on one line.

use clap::Parser;

fn main() {
    let cli = dpsbench::cli::Cli::parse();
    let code = match dpsbench::cli::execute(cli) {
        Ok(code) => code,
        Err(error) => {
            dpsbench::cli::tell(&format!("dpsbench: error: {}\n", dpsbench::cli::error_line(&error)));
            dpsbench::cli::EXIT_USAGE
        }
    };
    std::process::exit(code);
}
