//! `hearth-bench` binary: parses the command line, runs one scenario, prints its report.

use std::process::ExitCode;

use clap::Parser;
use hearth_bench::cli::{Cli, Command};
use hearth_bench::scenarios;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => scenarios::broker::run(&args).await.and_then(|report| {
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }),
    };
    // A finished run exits 0 even if messages were lost: loss is a
    // measurement, read it from the report. Non-zero means no report.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
