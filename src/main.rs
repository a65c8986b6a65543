//! `correlator`: parse the command line, run, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 finished but something was skipped or failed; 2 usage, config or
//! rule error; 3 could not run (I/O, AWS unreachable, state conflict).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use finding_correlator::cli::{Cli, Command, GraphArgs, LogFormat};
use finding_correlator::config::{Config, Settings};
use finding_correlator::graph::export::{self, Format};
use finding_correlator::pipeline;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    let settings = match Config::load(cli.config.as_deref()).and_then(|c| c.validate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Graph(args) => graph(args, &settings),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(3)
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .without_time()
            .with_target(false)
            .init(),
    }
}

fn graph(args: &GraphArgs, settings: &Settings) -> anyhow::Result<u8> {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Json);
    let run = pipeline::build_graph(&args.paths, settings, !args.no_signals);
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating `{}`", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            export::write(&run.graph, format, &mut w)
                .and_then(|()| w.flush())
                .with_context(|| format!("writing `{}`", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            export::write(&run.graph, format, &mut w)
                .and_then(|()| w.flush())
                .context("writing the graph to stdout")?;
        }
    }
    eprint!("{}", run.summary.to_text());
    Ok(if run.summary.lost_anything() { 1 } else { 0 })
}
