//! `correlator`: parse the command line, run, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 finished but something was skipped or failed; 2 usage, config or
//! rule error; 3 could not run (I/O, AWS unreachable, state conflict).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use finding_correlator::cli::{
    Cli, Command, CorrelateArgs, GraphArgs, LogFormat, RulesArgs, RulesCommand, SummaryFormat,
};
use finding_correlator::config::{Config, Settings};
use finding_correlator::graph::export::{self, Format};
use finding_correlator::rules::{RuleError, RuleSet};
use finding_correlator::sinks::asff;
use finding_correlator::state::{FileStore, State, StateStore};
use finding_correlator::summary::CorrelateSummary;
use finding_correlator::{incremental, pipeline};

/// mimalloc: signals are allocated on the decoding threads and freed on the consumer; glibc's
/// allocator serialises that on its arena locks (half the parallel throughput, measured by the
/// decode benchmark), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Correlate(args) => correlate(args, &settings),
        Command::Graph(args) => graph(args, &settings),
        Command::Rules(RulesCommand::Check(args)) => rules_check(args),
        Command::Rules(RulesCommand::Test(args)) => rules_test(args, &settings),
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

/// Loads the rules from `dir`, or the built-in ones. Problems are logged one per line
/// (`file:line:column: message`); the caller exits 2.
fn load_rules(dir: Option<&std::path::Path>) -> Option<RuleSet> {
    let loaded = match dir {
        Some(d) => RuleSet::load_dir(d),
        None => RuleSet::builtin(),
    };
    match loaded {
        Ok(set) => Some(set),
        Err(errors) => {
            report_rule_errors(&errors);
            None
        }
    }
}

fn report_rule_errors(errors: &[RuleError]) {
    for e in errors {
        tracing::error!("{e}");
    }
    tracing::error!(problems = errors.len(), "rules did not load");
}

fn write_output(
    path: &std::path::Path,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::new(stdout.lock());
        write(&mut w)
            .and_then(|()| w.flush())
            .context("writing to stdout")?;
        return Ok(());
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating `{}`", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("writing `{}`", path.display()))
}

fn correlate(args: &CorrelateArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(rules) = load_rules(args.rules.as_deref()) else {
        return Ok(2);
    };
    let graph_format = match &args.graph {
        Some(p) => match Format::from_path(p) {
            Some(f) => Some(f),
            None => {
                tracing::error!(
                    file = %p.display(),
                    "--graph: expected a file name ending in {}",
                    export::EXTENSIONS
                );
                return Ok(2);
            }
        },
        None => None,
    };
    let rules = std::sync::Arc::new(rules);
    let store = args.state.as_ref().map(|p| FileStore::new(p.clone()));
    // One run at a time per state (a dry run saves nothing and needs no lock).
    let _lock = match &store {
        Some(store) if !args.dry_run => match store.lock() {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::error!("{e}");
                return Ok(3);
            }
        },
        _ => None,
    };
    let prior = match &store {
        Some(store) => match store.load() {
            Ok(Some(state)) => {
                tracing::info!(
                    state = %store.describe(),
                    signals = state.signals.len(),
                    statements = state.graph.len(),
                    sequences = state.sequences.len(),
                    "continuing from saved state"
                );
                Some(state)
            }
            Ok(None) => {
                tracing::info!(state = %store.describe(), "no saved state yet: starting fresh");
                Some(State::new())
            }
            Err(e) => {
                tracing::error!("{e}");
                return Ok(3);
            }
        },
        None => None,
    };
    // The graph file is written while the rules are matched (`--graph` needs a file name
    // with an extension, so never stdout, where the findings may go).
    let graph_file = match (&args.graph, graph_format) {
        (Some(path), Some(format)) => Some((path.as_path(), format)),
        _ => None,
    };
    let (run, graph_written) = pipeline::correlate_with(
        &args.paths,
        settings,
        rules.clone(),
        graph_format.is_some(),
        prior.as_ref(),
        |graph| match graph_file {
            Some((path, format)) => write_output(path, &mut |w| export::write(graph, format, w)),
            None => Ok(()),
        },
    );
    let writer = asff::Writer {
        account: args.account.clone(),
        region: None,
    };
    // Without a state every finding is written; with one, only new and changed ones.
    let (next, changes) = match &prior {
        Some(p) => {
            let (next, changes) = incremental::advance(Some(p), &run, &rules, settings, &writer);
            (Some(next), Some(changes))
        }
        None => (None, None),
    };
    let findings = match &changes {
        Some(c) => c.write.clone(),
        None => asff::findings(&run.sequences, &rules, &writer),
    };
    if let Some(path) = &args.asff {
        let doc = serde_json::json!({ "Findings": findings });
        write_output(path, &mut |w| {
            serde_json::to_writer_pretty(&mut *w, &doc)?;
            w.write_all(b"\n")
        })?;
    }
    graph_written?;
    // The state is saved last, after every output is written: a run that fails before
    // this point leaves the previous state, and the next run writes what this one did not.
    let saved = match (&store, &next) {
        (Some(store), Some(next)) if !args.dry_run => {
            store
                .save(next)
                .with_context(|| "saving state (the previous state is unchanged)")?;
            Some(store.describe())
        }
        _ => None,
    };
    let report = CorrelateSummary::new(&run.sequences, &rules, run.matching);
    let state_line = match (&next, &saved) {
        (Some(n), Some(path)) => format!(
            "state: saved to {path} ({} signal(s) to replay, {} graph statement(s), {} sequence(s); horizon {})\n",
            n.signals.len(),
            n.graph.len(),
            n.sequences.len(),
            n.horizon
                .map_or("none".into(), finding_correlator::time::format_rfc3339)
        ),
        (Some(_), None) => "state: dry run, nothing saved\n".to_string(),
        _ => String::new(),
    };
    match args.summary {
        SummaryFormat::Text => eprint!(
            "{}{}{}{}",
            run.summary.to_text(),
            report.to_text(),
            changes.as_ref().map(|c| c.to_text()).unwrap_or_default(),
            state_line
        ),
        SummaryFormat::Json => {
            // One line, the last on stderr, after any log lines.
            let mut doc = serde_json::json!({ "read": run.summary, "correlate": report });
            if let Some(c) = &changes {
                doc["findings"] = serde_json::json!({
                    "new": c.new,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "superseded": c.superseded,
                    "written": c.write.len(),
                    "open_sequences": c.open,
                    "closed_sequences": c.closed,
                });
                doc["state"] = serde_json::json!({
                    "saved": saved.is_some(),
                    "dry_run": args.dry_run,
                    "before_horizon": run.before_horizon,
                    "signals": next.as_ref().map(|n| n.signals.len()),
                    "statements": next.as_ref().map(|n| n.graph.len()),
                    "horizon": next.as_ref().and_then(|n| n.horizon).map(finding_correlator::time::format_rfc3339),
                });
            }
            eprintln!("{}", serde_json::to_string(&doc).unwrap_or_default());
        }
    }
    Ok(if run.summary.lost_anything() { 1 } else { 0 })
}

fn rules_check(args: &RulesArgs) -> anyhow::Result<u8> {
    let Some(set) = load_rules(args.rules.as_deref()) else {
        return Ok(2);
    };
    for r in &set.rules {
        eprintln!(
            "ok  {:<38} {:<13} {:<11} group_by {:<14} window {:<5} {} stage(s), {} test(s)",
            r.id,
            r.severity.as_str(),
            match r.emit {
                finding_correlator::rules::Emit::Finding => "finding",
                finding_correlator::rules::Emit::WeakSignal => "weak signal",
            },
            r.group_by.as_str(),
            finding_correlator::time::format_duration(r.window),
            r.stages.len(),
            r.tests.len()
        );
    }
    eprintln!("{} rule(s) valid", set.rules.len());
    Ok(0)
}

fn rules_test(args: &RulesArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(set) = load_rules(args.rules.as_deref()) else {
        return Ok(2);
    };
    let results = pipeline::test_rules(&set, settings);
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    for r in &results {
        match &r.failure {
            None => eprintln!("ok    {} :: {}", r.rule, r.test),
            Some(f) => eprintln!("FAIL  {} :: {}: {f}", r.rule, r.test),
        }
    }
    eprintln!("{} passed, {} failed", results.len() - failed, failed);
    Ok(if failed > 0 { 1 } else { 0 })
}
