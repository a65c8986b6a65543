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

    /// Folder of Sigma rules for CloudTrail (`*.yml`, read recursively): each match becomes a
    /// `sigma:<id>` signal that rules select with `sigma:`; overrides `rules.sigma`
    /// (`CORRELATOR_RULES_SIGMA`).
    #[arg(long, global = true, value_name = "DIR")]
    pub sigma: Option<PathBuf>,

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
    /// Read files and folders, correlate them with the rules, and write attack-sequence
    /// findings (ASFF) and the graph.
    Correlate(CorrelateArgs),
    /// Read files and folders, build the entity graph, and write it.
    Graph(GraphArgs),
    /// Read files and folders, correlate them, and write the HTML investigation report.
    Report(ReportArgs),
    /// Check or test correlation rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// AWS mode: poll GuardDuty, Security Hub and CloudTrail from the state's checkpoints,
    /// correlate, write new and changed findings to Security Hub, and save the state.
    #[cfg(feature = "aws")]
    Run(RunArgs),
    /// Check the configuration (file and CORRELATOR_* variables) and the rules, with no AWS
    /// call.
    Validate(ValidateArgs),
    /// Look into a state, or free the lease of `correlator run`'s.
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Free the S3 state's lease left by a run that is gone (a run frees it by itself when it
    /// ends, and a later run takes it over when it can tell the holder is gone). Without
    /// --holder, only shows who holds it.
    #[cfg(feature = "aws")]
    Release(ReleaseArgs),
    /// Print what a state holds, part by part (checkpoints, signals, graph statements,
    /// sequences, baselines, unsent findings, lease), with the size of each. Reads only: takes
    /// no lock or lease, so it can look at the state of a run in progress.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Where the state lives: a path, or `s3://bucket/key` (in a build with AWS mode);
    /// overrides `aws.state`.
    #[arg(long, env = "CORRELATOR_STATE", value_name = "LOCATION")]
    pub state: Option<String>,

    /// Text for a person, JSON for a machine.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// Where the state lives (a path or `s3://bucket/key`); overrides `aws.state`.
    #[arg(long, env = "CORRELATOR_STATE", value_name = "LOCATION")]
    pub state: Option<String>,

    /// The holder the lease must name (as shown without this option, or in the error of a
    /// run that found the state held): the lease is freed only if it is still that one's.
    #[arg(long, value_name = "HOLDER")]
    pub holder: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Rules folder (`*.yaml`); replaces the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Where the state lives (a path or `s3://bucket/key`); overrides `aws.state`.
    #[arg(long, env = "CORRELATOR_STATE", value_name = "LOCATION")]
    pub state: Option<String>,

    /// Poll and correlate, but send nothing to Security Hub and save no state.
    #[arg(long)]
    pub dry_run: bool,

    /// Also write the findings sent (or, with --dry-run, that would be sent) to FILE, or
    /// stdout with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub asff: Option<PathBuf>,

    /// The run summary on stderr: text for a person, JSON for a machine.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Rules folder; default: the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("sequence_outputs").args(["graph", "report"]).multiple(true))]
pub struct CorrelateArgs {
    /// Rules folder (`*.yaml`); replaces the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Write the findings as `{"Findings":[…]}` to FILE, or to stdout with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub asff: Option<PathBuf>,

    /// Write the entity graph to FILE (format from the extension: .json, .dot or .gv,
    /// .graphml, .cypher or .cql).
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,

    /// Write the HTML investigation report (one self-contained file) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Only this attack sequence in --graph and --report: its finding `Id` (the same string
    /// as its `Detection.Sequence.Uid`). The graph is its neighbourhood.
    #[arg(long, value_name = "ID", requires = "sequence_outputs")]
    pub sequence: Option<String>,

    /// The account that writes the findings (`AwsAccountId`, `ProductArn`); default: the
    /// affected account of each finding.
    #[arg(long, value_name = "ID", value_parser = parse_account)]
    pub account: Option<String>,

    /// The run summary on stderr: text for a person, JSON for a machine.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,

    /// Continue from the state in FILE and save the new state there (created when missing):
    /// open windows and sequences carry over, and only new or changed findings are written.
    #[arg(long, env = "CORRELATOR_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Run everything and report what would be written, but save no state (and, in AWS
    /// mode, send nothing to AWS). Local output files are still written.
    #[arg(long)]
    pub dry_run: bool,

    /// Input files and folders (read recursively; content decides the format).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("expected a 12-digit AWS account id, found {s:?}"))
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and validate every rule (no matching): reports every problem with
    /// file:line:column.
    Check(RulesArgs),
    /// Run every rule's inline tests.
    Test(RulesArgs),
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Rules folder; default: the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Output format: Cytoscape.js JSON, Graphviz DOT, GraphML, or a Neo4j Cypher script;
    /// default from the output file's extension, else JSON.
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,

    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Leave signal nodes out (entities and their relations only).
    #[arg(long)]
    pub no_signals: bool,

    /// Only the neighbourhood of one attack sequence (its signals, the entities they name,
    /// its group and members, and one hop around them): its finding `Id`, the same string as
    /// its `Detection.Sequence.Uid`. Runs the rules to find it.
    #[arg(long, value_name = "ID")]
    pub sequence: Option<String>,

    /// Rules folder for --sequence; replaces the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Input files and folders (read recursively; content decides the format).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `graph --format`: the export formats by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Cytoscape.js elements JSON (also what networkx's `cytoscape_graph` reads).
    Json,
    /// Graphviz DOT; each instance group is a cluster.
    Dot,
    /// GraphML with typed keys and TinkerPop `labelV`/`labelE` labels.
    Graphml,
    /// A Neo4j Cypher script of idempotent `MERGE`s.
    Cypher,
}

impl From<GraphFormat> for Format {
    fn from(f: GraphFormat) -> Format {
        match f {
            GraphFormat::Json => Format::Json,
            GraphFormat::Dot => Format::Dot,
            GraphFormat::Graphml => Format::Graphml,
            GraphFormat::Cypher => Format::Cypher,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Write the report here (`-` for stdout).
    #[arg(long, short, value_name = "FILE|-")]
    pub output: PathBuf,

    /// Only this attack sequence: its finding `Id` (the same string as its
    /// `Detection.Sequence.Uid`); default: every sequence, with an index.
    #[arg(long, value_name = "ID")]
    pub sequence: Option<String>,

    /// Rules folder (`*.yaml`); replaces the rules built into the binary.
    #[arg(long, env = "CORRELATOR_RULES", value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Input files and folders (read recursively; content decides the format).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}
