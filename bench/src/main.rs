//! `hearth-bench` binary: parses the command line, runs one scenario, prints its report.

use std::process::ExitCode;

use clap::Parser;
use hearth_bench::cli::{ButtonsArgs, Cli, Command};
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
        Command::Buttons(args) => buttons(&args).await,
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

/// `buttons`: either writes the hub rules (`--write-rules`) or runs.
async fn buttons(args: &ButtonsArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.write_rules {
        let rules = scenarios::buttons::rules_for(args);
        if path.as_os_str() == "-" {
            print!("{rules}");
        } else {
            std::fs::write(path, rules)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            match args.automations {
                Some(n) => eprintln!(
                    "hearth-bench: wrote {n} automation(s) to {}",
                    path.display()
                ),
                None => eprintln!(
                    "hearth-bench: wrote {} rule(s) to {}",
                    args.buttons,
                    path.display()
                ),
            }
        }
        return Ok(());
    }
    let report = scenarios::buttons::run(args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
