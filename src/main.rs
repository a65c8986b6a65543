//! `correlator`: parse the command line, run, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 finished but something was skipped or failed; 2 usage, config or
//! rule error; 3 could not run (I/O, AWS unreachable, state conflict).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use finding_correlator::cli::{
    Cli, Command, CorrelateArgs, GraphArgs, LogFormat, ReportArgs, RulesArgs, RulesCommand,
    SummaryFormat, ValidateArgs,
};
use finding_correlator::cli::{InspectArgs, StateCommand};
#[cfg(feature = "aws")]
use finding_correlator::cli::{ReleaseArgs, RunArgs};
use finding_correlator::config::{Config, Settings};
use finding_correlator::graph::Detail;
use finding_correlator::graph::export::{self, ExportGraph, Format};
use finding_correlator::report;
use finding_correlator::rules::{RuleError, RuleSet};
use finding_correlator::sinks::asff;
use finding_correlator::state::{FileStore, State, StateStore};
use finding_correlator::summary::CorrelateSummary;
use finding_correlator::{pipeline, run_loop};

/// mimalloc: signals are allocated on the decoding threads and freed on the consumer; glibc's
/// allocator serialises that on its arena locks (half the parallel throughput, measured by the
/// decode benchmark), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    let settings = match Config::load(cli.config.as_deref()).and_then(|c| c.validate()) {
        Ok(mut s) => {
            if let Some(dir) = &cli.sigma {
                s.sigma = Some(dir.clone());
            }
            // Progress for long reads, on a terminal, when logs are for a person.
            use std::io::IsTerminal;
            s.read.progress = cli.log_format == LogFormat::Text && std::io::stderr().is_terminal();
            for w in &s.warnings {
                tracing::warn!("config: {w}");
            }
            s
        }
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Correlate(args) => correlate(args, &settings),
        Command::Graph(args) => graph(args, &settings),
        Command::Report(args) => report(args, &settings),
        Command::Rules(RulesCommand::Check(args)) => rules_check(args, &settings),
        Command::Rules(RulesCommand::Test(args)) => rules_test(args, &settings),
        #[cfg(feature = "aws")]
        Command::Run(args) => aws_run(args, &settings),
        Command::Validate(args) => validate(args, &settings),
        #[cfg(feature = "aws")]
        Command::State(StateCommand::Release(args)) => state_release(args, &settings),
        Command::State(StateCommand::Inspect(args)) => state_inspect(args, &settings),
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
        .map(Format::from)
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Json);
    // With --sequence, the rules run to find the sequence; its neighbourhood is written.
    let (graph, summary, seeds) = match &args.sequence {
        None => {
            let run = pipeline::build_graph(&args.paths, settings, !args.no_signals);
            (run.graph, run.summary, None)
        }
        Some(id) => {
            let Some(rules) = load_rules(args.rules.as_deref(), settings) else {
                return Ok(2);
            };
            let rules = std::sync::Arc::new(rules);
            let run = pipeline::correlate(&args.paths, settings, rules.clone(), true, None);
            match report::pick(&run.sequences, &rules, id) {
                Ok(seq) => {
                    let seeds = report::seeds(seq);
                    (run.graph, run.summary, Some(seeds))
                }
                Err(msg) => {
                    tracing::error!("{msg}");
                    return Ok(2);
                }
            }
        }
    };
    let model = match &seeds {
        Some(seeds) => ExportGraph::neighbourhood(&graph, seeds),
        None => ExportGraph::new(&graph),
    };
    let model = if args.no_signals {
        model.without_signals()
    } else {
        model
    };
    let path = args.output.as_deref().unwrap_or(std::path::Path::new("-"));
    write_output(path, &mut |w| export::write_model(&model, format, w))?;
    eprint!("{}", summary.to_text());
    Ok(if summary.lost_anything() { 1 } else { 0 })
}

fn report(args: &ReportArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(rules) = load_rules(args.rules.as_deref(), settings) else {
        return Ok(2);
    };
    let rules = std::sync::Arc::new(rules);
    let run = pipeline::correlate(&args.paths, settings, rules.clone(), true, None);
    let sequences = match report::select(&run.sequences, &rules, args.sequence.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            tracing::error!("{msg}");
            return Ok(2);
        }
    };
    let page = report::Report {
        graph: &run.graph,
        rules: &rules,
        sequences,
    };
    write_output(&args.output, &mut |w| report::write_html(&page, w))?;
    let found = CorrelateSummary::new(&run.sequences, &rules, run.matching);
    eprint!("{}{}", run.summary.to_text(), found.to_text());
    Ok(if run.summary.lost_anything() { 1 } else { 0 })
}

/// Loads the rules from `dir`, or the built-in ones, and the Sigma rules of `sigma` (`--sigma`,
/// `rules.sigma`). Problems are logged one per line (`file:line:column: message`); the caller
/// exits 2.
fn load_rules(dir: Option<&std::path::Path>, settings: &Settings) -> Option<RuleSet> {
    let loaded = match dir {
        Some(d) => RuleSet::load_dir(d),
        None => RuleSet::builtin(),
    };
    let sigma = match &settings.sigma {
        Some(d) => finding_correlator::sigma::SigmaSet::load_dir(d),
        None => Ok(Default::default()),
    };
    let loaded = match (loaded, sigma) {
        (Ok(set), Ok(sigma)) => set.with_sigma(sigma),
        (Err(mut a), Err(mut b)) => {
            a.append(&mut b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
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
    let Some(rules) = load_rules(args.rules.as_deref(), settings) else {
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
    if let Some(state) = &args.state
        && let Err(e) = finding_correlator::config::check_local_path(&state.to_string_lossy())
    {
        tracing::error!(
            "--state (CORRELATOR_STATE): {e} (`correlate` keeps its state in a local file)"
        );
        return Ok(2);
    }
    let rules = std::sync::Arc::new(rules);
    let store = args
        .state
        .as_ref()
        .map(|p| FileStore::new(shard_state(settings, &p.to_string_lossy())));
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
    // Without --sequence the whole graph is written while the rules are matched (`--graph`
    // needs a file name with an extension, so never stdout, where the findings may go); a
    // sequence's neighbourhood needs the matches, so it is written after them.
    let mut outputs = Outputs {
        args,
        rules: &rules,
        graph_format,
        graph_written: std::sync::Mutex::new(None),
    };
    let taken = match (&store, &prior) {
        (Some(store), Some(prior)) => Some(run_loop::Taken { store, prior }),
        _ => None,
    };
    let outcome = match run_loop::run_once(
        taken,
        &mut run_loop::Files(&args.paths),
        &mut outputs,
        settings,
        &rules,
        run_loop::Options {
            dry_run: args.dry_run,
        },
    ) {
        Ok(o) => o,
        Err(e) => match e.downcast::<run_loop::Usage>() {
            Ok(usage) => {
                tracing::error!("{usage}");
                return Ok(2);
            }
            Err(e) => return Err(e),
        },
    };
    let run_loop::Outcome {
        mut run,
        changes,
        next,
        saved,
        findings,
    } = outcome;
    // Written: freed before the summary is made (a stateless run's findings are its largest
    // part then, some 170 MB of JSON trees on the heavy benchmark mix).
    drop(findings);
    let report = CorrelateSummary::new(&run.sequences, &rules, std::mem::take(&mut run.matching));
    let state_line = match (&next, &saved) {
        (Some(n), Some(path)) => format!(
            "state: saved to {path} ({} signal(s) to replay, {} graph statement(s), {} sequence(s); horizon {}{})\n",
            n.signals.len(),
            n.graph.len(),
            n.sequences.len(),
            n.horizon
                .map_or("none".into(), finding_correlator::time::format_rfc3339),
            left_out(run.before_horizon)
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
            // One line, the last on stderr, after any log lines; written from the summaries
            // as they are, not from a tree of them (on 5 M records it is 138 MB of text, a
            // list of every sequence's members).
            #[derive(serde::Serialize)]
            struct Doc<'a> {
                correlate: &'a CorrelateSummary,
                #[serde(skip_serializing_if = "Option::is_none")]
                findings: Option<serde_json::Value>,
                read: &'a finding_correlator::summary::Summary,
                #[serde(skip_serializing_if = "Option::is_none")]
                state: Option<serde_json::Value>,
            }
            let mut doc = Doc {
                correlate: &report,
                findings: None,
                read: &run.summary,
                state: None,
            };
            if let Some(c) = &changes {
                doc.findings = Some(serde_json::json!({
                    "new": c.new,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "superseded": c.superseded,
                    "withdrawn": c.withdrawn,
                    "written": c.write.len(),
                    "open_sequences": c.open,
                    "closed_sequences": c.closed,
                }));
                doc.state = Some(serde_json::json!({
                    "saved": saved.is_some(),
                    "dry_run": args.dry_run,
                    "before_horizon": run.before_horizon,
                    "signals": next.as_ref().map(|n| n.signals.len()),
                    "statements": next.as_ref().map(|n| n.graph.len()),
                    "horizon": next.as_ref().and_then(|n| n.horizon).map(finding_correlator::time::format_rfc3339),
                }));
            }
            let mut err = std::io::BufWriter::new(std::io::stderr().lock());
            serde_json::to_writer(&mut err, &doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(err))
                .and_then(|()| err.flush())
                .context("writing the summary to stderr")?;
        }
    }
    let code = if run.summary.lost_anything() { 1 } else { 0 };
    // The process ends with this command: what the run built (the state read and the state
    // saved, the sequences; on the heavy benchmark mix hundreds of MB in millions of
    // allocations) is left to the exit, not freed an allocation at a time (some 3 % of a
    // 15-minute slice's CPU). The state's lock is released as before.
    std::mem::forget((run, changes, next, prior));
    Ok(code)
}

/// What the text summary's state line adds when selected records older than the state's
/// horizon were left out (see the warning the run logs).
fn left_out(before_horizon: u64) -> String {
    if before_horizon == 0 {
        return String::new();
    }
    format!("; {before_horizon} selected record(s) older than the horizon left out")
}

/// The outputs of `correlate`: the findings (`--asff`), the graph (`--graph`) and the report
/// (`--report`), each to its file or stdout.
struct Outputs<'a> {
    args: &'a CorrelateArgs,
    rules: &'a RuleSet,
    graph_format: Option<Format>,
    /// The whole graph's write while the rules were matched, if it was written then.
    graph_written: std::sync::Mutex<Option<anyhow::Result<()>>>,
}

impl Outputs<'_> {
    /// The sequence `--sequence` names, if any.
    fn focus<'r>(
        &self,
        run: &'r pipeline::CorrelateRun,
    ) -> Result<Option<&'r finding_correlator::matcher::Sequence>, run_loop::Usage> {
        match &self.args.sequence {
            Some(id) => report::pick(&run.sequences, self.rules, id)
                .map(Some)
                .map_err(run_loop::Usage),
            None => Ok(None),
        }
    }
}

impl run_loop::Sink for Outputs<'_> {
    fn graph_detail(&self) -> Detail {
        // Exports and reports draw the signals; a sequence's neighbourhood (`--graph` with
        // `--sequence`) is an export too.
        if self.graph_format.is_some() || self.args.report.is_some() {
            Detail::Signals
        } else {
            Detail::Matching
        }
    }

    fn reads_graph(&self) -> bool {
        // A report draws it, and so does a sequence's neighbourhood (`--graph` with
        // `--sequence`); the whole graph is exported in `on_graph`.
        self.args.report.is_some() || (self.args.graph.is_some() && self.args.sequence.is_some())
    }

    fn on_graph(&self, graph: &finding_correlator::graph::EntityGraph) {
        if let (Some(path), Some(format), None) =
            (&self.args.graph, self.graph_format, &self.args.sequence)
        {
            let written = write_output(path, &mut |w| export::write(graph, format, w));
            *self.graph_written.lock().unwrap_or_else(|e| e.into_inner()) = Some(written);
        }
    }

    fn writer(&mut self, run: &pipeline::CorrelateRun) -> anyhow::Result<asff::Writer> {
        self.focus(run)?;
        Ok(asff::Writer {
            account: self.args.account.clone(),
            region: None,
            partition: None,
        })
    }

    fn write(
        &mut self,
        findings: &mut Vec<finding_correlator::sinks::KeptFinding>,
        run: &pipeline::CorrelateRun,
        _dry_run: bool,
    ) -> anyhow::Result<Vec<String>> {
        let args = self.args;
        if let Some(path) = &args.asff {
            write_output(path, &mut |w| {
                finding_correlator::sinks::write_document(&mut *w, findings)
            })?;
        }
        let graph_written = self
            .graph_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        graph_written.unwrap_or(Ok(()))?;
        let focus = self.focus(run)?;
        if let (Some(path), Some(format), Some(seq)) = (&args.graph, self.graph_format, focus) {
            let model = report::neighbourhood(&run.graph, seq);
            write_output(path, &mut |w| export::write_model(&model, format, w))?;
        }
        if let Some(path) = &args.report {
            let page = report::Report {
                graph: &run.graph,
                rules: self.rules,
                sequences: match focus {
                    Some(seq) => vec![seq],
                    None => report::finding_sequences(&run.sequences, self.rules),
                },
            };
            write_output(path, &mut |w| report::write_html(&page, w))?;
        }
        // Files and stdout take every finding, or fail the run.
        Ok(Vec::new())
    }
}

fn rules_check(args: &RulesArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(set) = load_rules(args.rules.as_deref(), settings) else {
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
    eprintln!(
        "{} compute-buying API(s) in the launch catalog",
        set.launches.len()
    );
    if !set.sigma.is_empty() {
        eprintln!(
            "{} Sigma rule(s) valid{}",
            set.sigma.len(),
            if set.sigma.every_record() {
                " (some name no literal eventName or eventSource: every CloudTrail record is evaluated)"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

fn rules_test(args: &RulesArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(set) = load_rules(args.rules.as_deref(), settings) else {
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

#[cfg(feature = "aws")]
fn aws_run(args: &RunArgs, settings: &Settings) -> anyhow::Result<u8> {
    if let Some(state) = &args.state
        && let Err(e) = finding_correlator::config::check_location(state)
    {
        tracing::error!("--state (CORRELATOR_STATE): {e}");
        return Ok(2);
    }
    let Some(rules) = load_rules(args.rules.as_deref(), settings) else {
        return Ok(2);
    };
    let opts = finding_correlator::aws::run::RunOptions {
        state: args.state.as_deref().map(|l| shard_state(settings, l)),
        dry_run: args.dry_run,
        asff: args.asff.clone(),
        now: None,
    };
    // On a thread with a large stack: the SDK's deserializers of deeply nested findings
    // (Security Hub `GetFindings`) recurse deeper than a main thread allows in debug builds.
    let rules = std::sync::Arc::new(rules);
    let result = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("run".into())
            .stack_size(64 << 20)
            .spawn_scoped(scope, || {
                finding_correlator::aws::run::run(settings, rules, &opts)
            })
            .map(|h| h.join())
    });
    let result = match result {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(anyhow::anyhow!("the run panicked")),
        Err(e) => Err(anyhow::anyhow!("starting the run: {e}")),
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // Could not run (a busy or unusable state, a source or the sink failing after
            // retries): nothing was saved, the next run starts from the same checkpoints.
            tracing::error!("{e:#}");
            return Ok(3);
        }
    };
    match args.summary {
        SummaryFormat::Text => {
            let mut text = String::new();
            for s in &report.sources {
                let late = if s.late > 0 {
                    format!(" ({} arrived late)", s.late)
                } else {
                    String::new()
                };
                text.push_str(&format!(
                    "source {:<11} {:<15} {} call(s), {} record(s){late} since {} in {} ms\n",
                    s.source, s.region, s.calls, s.records, s.since, s.millis
                ));
            }
            let f = &report.findings;
            if args.dry_run {
                text.push_str(&format!(
                    "sink {}: {} new, {} updated, {} unchanged, {} superseded{}; {} would be sent\n",
                    f.sink, f.new, f.updated, f.unchanged, f.superseded, finding_correlator::incremental::withdrawn_note(f.withdrawn), f.to_send
                ));
            } else {
                text.push_str(&format!(
                    "sink {}: {} new, {} updated, {} unchanged, {} superseded{}; {} sent, {} imported, {} failed in {} call(s), {} ms\n",
                    f.sink, f.new, f.updated, f.unchanged, f.superseded, finding_correlator::incremental::withdrawn_note(f.withdrawn), f.sent, f.imported, f.failed.len(), f.calls, f.millis
                ));
            }
            for (id, code, message) in &f.failed {
                text.push_str(&format!("  failed {id}: {code}: {message}\n"));
            }
            if !report.unknown_regions.is_empty() {
                let list: Vec<String> = report
                    .unknown_regions
                    .iter()
                    .map(|(r, n)| format!("{r} ({n} signal(s))"))
                    .collect();
                text.push_str(&format!(
                    "regions not in this build's list, kept as given: {}\n",
                    list.join(", ")
                ));
            }
            let st = &report.state;
            text.push_str(&format!(
                "state {}: {} ({} signal(s) to replay, {} graph statement(s), horizon {}{})\n",
                st.location,
                if st.saved {
                    "saved"
                } else {
                    "not saved (dry run)"
                },
                st.signals,
                st.statements,
                st.horizon.as_deref().unwrap_or("none"),
                left_out(st.before_horizon)
            ));
            eprint!("{text}");
        }
        SummaryFormat::Json => {
            eprintln!("{}", serde_json::to_string(&report).unwrap_or_default());
        }
    }
    Ok(if report.partial { 1 } else { 0 })
}

#[cfg(feature = "aws")]
fn state_release(args: &ReleaseArgs, settings: &Settings) -> anyhow::Result<u8> {
    use finding_correlator::aws::lease::Released;
    let location = &shard_state(
        settings,
        args.state.as_deref().unwrap_or(&settings.aws.state),
    );
    let outcome =
        finding_correlator::aws::run::release(settings, location, args.holder.as_deref())?;
    let (code, message) = match outcome {
        Released::Nothing(m) => (0, m),
        Released::Freed(m) => (0, m),
        Released::NotConfirmed(m) => (1, m),
        Released::OtherHolder(m) => (2, m),
    };
    eprintln!("{message}");
    Ok(code)
}

fn state_inspect(args: &InspectArgs, settings: &Settings) -> anyhow::Result<u8> {
    use finding_correlator::state_inspect::inspect;
    let location = &shard_state(
        settings,
        args.state.as_deref().unwrap_or(&settings.aws.state),
    );
    let state = if location.starts_with("s3://") {
        #[cfg(feature = "aws")]
        {
            finding_correlator::aws::run::load_state(settings, location)?
        }
        #[cfg(not(feature = "aws"))]
        {
            anyhow::bail!(
                "state `{location}`: this build has no AWS mode (built without the `aws` feature), so it cannot read S3"
            )
        }
    } else {
        FileStore::new(location).load()?
    };
    let Some(state) = state else {
        anyhow::bail!("state `{location}`: there is none (no run has saved one there)");
    };
    let found = inspect(&state, location);
    match args.format {
        SummaryFormat::Text => print!("{}", found.text()),
        SummaryFormat::Json => println!("{}", serde_json::to_string(&found)?),
    }
    Ok(0)
}

/// The state of this run's shard at `location` (`aws.shard`; unchanged without shards).
fn shard_state(settings: &Settings, location: &str) -> String {
    settings
        .shard
        .map_or_else(|| location.to_string(), |s| s.state_location(location))
}

fn validate(args: &ValidateArgs, settings: &Settings) -> anyhow::Result<u8> {
    let Some(set) = load_rules(args.rules.as_deref(), settings) else {
        return Ok(2);
    };
    let aws = &settings.aws;
    let sources: Vec<&str> = aws.sources.iter().map(|s| s.name()).collect();
    let names = finding_correlator::sources::needed_event_names(&set, settings);
    eprintln!(
        "configuration valid{}; {} rule(s) valid\n  regions: {}\n  partition: {}\n  sources: {}\n  state: {}\n  sink: {}\n  CloudTrail lookups: {}",
        match settings.warnings.len() {
            0 => String::new(),
            n => format!(" with {n} warning(s)"),
        },
        set.rules.len(),
        if aws.regions.is_empty() {
            "the SDK's default region".to_string()
        } else {
            aws.regions.join(", ")
        },
        aws.partition
            .as_deref()
            .unwrap_or("the caller's (from the SDK's region and credentials)"),
        sources.join(", "),
        aws.state,
        aws.sink.name(),
        match names {
            Some(n) => format!("by event name ({})", n.join(", ")),
            None => "all management events (a rule selects events by pattern)".to_string(),
        }
    );
    Ok(0)
}
