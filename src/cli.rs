//! The command line (clap derive). Parsing only; `main.rs` runs what it says.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::graph::export::Format;

/// Correlates GuardDuty findings and CloudTrail events over an entity graph of EC2 instance
/// groups.
#[derive(Debug, Parser)]
#[command(name = "correlator", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CORRELATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "CORRELATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level filter (error, warn, info, debug, trace, or a tracing filter directive).
    #[arg(long, global = true, env = "CORRELATOR_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read files and folders, build the entity graph, and write it.
    Graph(GraphArgs),
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Output format; default from the output file's extension, else JSON.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Leave signal nodes out (entities and their relations only).
    #[arg(long)]
    pub no_signals: bool,

    /// Input files and folders (read recursively; content decides the format).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}
