//! Raw records → [`Signal`]s: every shape a user has, recognised by content.
//!
//! [`decode_reader`] takes any reader (plain or gzipped, detected by magic bytes), frames it
//! into records with [`frame`], recognises each record by its keys, and hands on signals and
//! problems through a callback. It does no I/O policy of its own: callers decide where bytes
//! come from and what to do with problems. One file per input family does the mapping:
//! [`cloudtrail`], [`guardduty`], [`asff`].
//!
//! Records are parsed once, into borrowed typed structs ([`RawRecord`] is the union of the
//! top-level keys of every family), never into `serde_json::Value` trees.

pub mod asff;
pub mod cloudtrail;
pub mod frame;
pub mod guardduty;
mod lenient;
pub mod raw_json;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::value::RawValue;

pub use frame::Location;
use frame::{FrameError, Verdict};
use lenient::{LenientStr, LenientTime};

use crate::signal::Signal;

/// Why a JSON value that is none of the input shapes is skipped. A file all of whose values
/// are such (a JSON Lines file of labels beside the data) is reported once, as a whole.
pub const NOT_A_RECORD: &str = "not a recognised record: expected a CloudTrail record (`eventSource`, `eventName`), a GuardDuty finding (`type`, `resource`), an ASFF finding (`SchemaVersion` 2018-10-08, `ProductArn`), or an EventBridge event of those";

/// Longest part of a value quoted in a message, in bytes.
const QUOTE_MAX: usize = 64;
/// Longest problem reason, in bytes (serde's messages quote a whole offending string).
const REASON_MAX: usize = 400;

/// `text` with each `"…"` run longer than `QUOTE_MAX` bytes inside its quotes cut to a prefix
/// of at most that many (never inside an escape), and followed by how long it was. Quotes are
/// matched as Rust and JSON write them (a backslash escapes the next character); a run the
/// text ends inside is cut the same way.
fn shorten_quotes(text: String) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while let Some(open) = memchr::memchr(b'"', &bytes[i..]).map(|j| i + j) {
        let start = open + 1;
        // Where the run ends (its closing quote, or the end of the text), and the last
        // place within QUOTE_MAX of its start that is not inside an escape.
        let mut j = start;
        let mut cut = start;
        let mut close = None;
        while j < bytes.len() {
            match bytes[j] {
                b'"' => {
                    close = Some(j);
                    break;
                }
                b'\\' => j += 2,
                _ => j += 1,
            }
            if j - start <= QUOTE_MAX && text.is_char_boundary(j.min(bytes.len())) {
                cut = j.min(bytes.len());
            }
        }
        let end = close.unwrap_or(bytes.len());
        if end - start > QUOTE_MAX {
            out.push_str(&text[copied..cut]);
            out.push_str(&format!("\"… ({} bytes quoted)", end - start));
            copied = close.map_or(bytes.len(), |c| c + 1);
        }
        match close {
            Some(c) => i = c + 1,
            None => break,
        }
    }
    if copied == 0 {
        return text;
    }
    out.push_str(&text[copied..]);
    out
}

/// `s` quoted, cut to a short prefix: a value of any size makes a short message.
pub(crate) fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return format!("{s:?}");
    }
    let cut = s.floor_char_boundary(QUOTE_MAX);
    format!("{:?}… ({} bytes)", &s[..cut], s.len())
}

/// A problem's reason, cut short when it quotes a long value: every quoted run (serde's
/// messages quote a whole offending string, `invalid type: string "…"`) to its first
/// `QUOTE_MAX` bytes, then the whole to `REASON_MAX`.
fn clip(reason: String) -> String {
    let mut reason = shorten_quotes(reason);
    if reason.len() <= REASON_MAX {
        return reason;
    }
    let cut = reason.floor_char_boundary(REASON_MAX);
    let more = reason.len() - cut;
    reason.truncate(cut);
    reason.push_str(&format!("… ({more} more bytes not shown)"));
    reason
}

/// The input families a record can belong to, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    CloudTrail,
    CloudTrailLookupEvents,
    CloudTrailEventBridge,
    GuardDuty,
    GuardDutyEventBridge,
    Asff,
    AsffEventBridge,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::CloudTrail => "cloudtrail",
            RecordKind::CloudTrailLookupEvents => "cloudtrail (LookupEvents)",
            RecordKind::CloudTrailEventBridge => "cloudtrail (EventBridge)",
            RecordKind::GuardDuty => "guardduty",
            RecordKind::GuardDutyEventBridge => "guardduty (EventBridge)",
            RecordKind::Asff => "asff",
            RecordKind::AsffEventBridge => "asff (EventBridge)",
        }
    }
}

/// How serious a problem is for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Passed over on purpose (GuardDuty sample findings, non-JSON files met in a folder).
    Ignored,
    /// Data was lost: a record or part of a file could not be decoded. Exit code 1.
    Skipped,
}

/// One thing that could not be decoded, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// None when the whole file is concerned.
    pub location: Option<Location>,
    pub reason: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// What [`decode_reader`] hands on.
#[derive(Debug)]
pub enum Decoded {
    Signal(RecordKind, Box<Signal>),
    /// A record [`DecodeOptions::calls`] says no one needs: counted, with its time, but no
    /// signal is built for it.
    Unneeded(RecordKind, crate::time::Millis),
    /// A Sigma rule's match on the CloudTrail record just handed on as a [`Decoded::Signal`],
    /// or as [`Decoded::Unneeded`] when [`DecodeOptions::calls`] says no one needs the call
    /// itself (a record a Sigma rule matches is always decoded, to make its matches): a signal
    /// of kind `sigma:<id>` made from it (see [`crate::sigma`]). Not a record of its own:
    /// readers do not count it as one.
    Sigma(RecordKind, Box<Signal>),
    Problem(Problem),
}

/// Which CloudTrail calls a run may need a signal of, decided from the event source and
/// name and whether an instance's role credentials made the call. Calls that describe
/// instances are always decoded; so are calls by instances whose session the graph has not
/// been told of (see `sent`).
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    /// Every call may be needed.
    pub all: bool,
    /// Event names some rule may select.
    pub names: rustc_hash::FxHashSet<String>,
    /// Event name patterns some rule may select.
    pub patterns: Vec<crate::rules::compile::Glob>,
    /// Every call made by an instance may be needed.
    pub instance_all: bool,
    /// The high-risk APIs (`iam:CreateAccessKey`) some rule may select, from any actor or
    /// only from instances.
    pub high_risk: crate::rules::compile::PatternSet,
    pub high_risk_by_anyone: bool,
    pub high_risk_by_instance: bool,
    /// The graph statements already handed on, when one copy of each is all a run needs
    /// (without a state): a call by an instance whose statement is among them is not
    /// needed either.
    pub sent: Option<std::sync::Arc<SentStatements>>,
}

impl CallFilter {
    /// Whether a call may be needed by a rule.
    pub fn may_need(&self, source: &str, name: &str, by_instance: bool) -> bool {
        if self.all
            || (by_instance && self.instance_all)
            || self.names.contains(name)
            || self.patterns.iter().any(|g| g.matches(name))
        {
            return true;
        }
        if self.high_risk_by_anyone || (by_instance && self.high_risk_by_instance) {
            return self
                .high_risk
                .matches(&crate::rules::compile::api_of(source, name));
        }
        false
    }

    fn already_sent(&self, statement: u64) -> bool {
        self.sent.as_ref().is_some_and(|s| {
            s.0.lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&statement)
        })
    }

    /// Whether a CloudTrail record needs no signal: no rule can take it, it describes no
    /// instance, and it was not made by an instance, or by one whose session the graph was
    /// already told of.
    fn counted_only(&self, ct: &cloudtrail::Record<'_>) -> bool {
        let (Some(source), Some(name)) = (ct.event_source.get(), ct.event_name.get()) else {
            return false;
        };
        if cloudtrail::needs_details(name) {
            return false;
        }
        let by_instance = cloudtrail::by_instance(ct);
        if self.may_need(source, name, by_instance) {
            return false;
        }
        !by_instance || cloudtrail::session_statement(ct).is_some_and(|st| self.already_sent(st))
    }
}

/// The graph statements (see [`crate::pipeline::graph_statement`]) a run has handed on, with
/// the rank of the copy sent, shared by the reading threads.
#[derive(Debug, Default)]
pub struct SentStatements(
    pub std::sync::Mutex<rustc_hash::FxHashMap<u64, (crate::time::Millis, u64)>>,
);

/// Decoder settings.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Largest record accepted, in bytes.
    pub max_record_bytes: usize,
    /// Keep GuardDuty sample findings (`service.additionalInfo.sample: true`) instead of
    /// ignoring them.
    pub keep_sample_findings: bool,
    /// When set, CloudTrail calls it rules out (and that neither describe instances nor were
    /// made by an instance) are handed on as [`Decoded::Unneeded`]: records no rule can use
    /// are not fully decoded. None: a signal for every record.
    pub calls: Option<std::sync::Arc<CallFilter>>,
    /// The compute-buying APIs whose calls become launches (the rule set's catalog).
    pub launches: std::sync::Arc<crate::launch::Catalog>,
    /// Sigma rules to evaluate on every CloudTrail record one of them may match (see
    /// [`crate::sigma`]); their matches are handed on as [`Decoded::Sigma`].
    pub sigma: Option<std::sync::Arc<crate::sigma::SigmaSet>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_record_bytes: 64 << 20,
            keep_sample_findings: false,
            calls: None,
            launches: crate::launch::Catalog::shared_builtin(),
            sigma: None,
        }
    }
}

/// Totals of one reader.
#[derive(Clone, Debug, Default)]
pub struct ReaderStats {
    /// Bytes after decompression.
    pub bytes: u64,
    pub gzip: bool,
    /// Set when the content was not JSON at all: how it starts. The caller decides whether
    /// that is a problem (a file named on the command line) or not (a README in a folder).
    pub not_json: Option<String>,
    /// Bytes the framer looked at (see [`frame::FrameStats::examined`]).
    pub examined: u64,
    /// Top-level values met; 0 when the content is empty, white space or a byte order mark.
    pub values: u64,
}

/// Decodes every record of `reader` and calls `emit` for each signal and problem.
///
/// Never fails: a broken file yields the signals before the break and a [`Problem`] saying
/// where and why it broke. Content that is not JSON at all yields nothing and is reported in
/// [`ReaderStats::not_json`].
pub fn decode_reader<R: Read>(
    reader: R,
    opts: &DecodeOptions,
    emit: &mut dyn FnMut(Decoded),
) -> ReaderStats {
    decode_reader_from(reader, opts, false, emit)
}

/// [`decode_reader`] on input known to be JSON Lines from its first byte (a part of a file
/// cut at a line start, see [`frame::frame_from`]).
pub fn decode_reader_from<R: Read>(
    reader: R,
    opts: &DecodeOptions,
    json_lines: bool,
    emit: &mut dyn FnMut(Decoded),
) -> ReaderStats {
    let mut buffered = BufReader::with_capacity(64 << 10, reader);
    let gzip = matches!(buffered.fill_buf(), Ok(b) if b.starts_with(&[0x1f, 0x8b]));
    let mut stats = ReaderStats {
        gzip,
        ..ReaderStats::default()
    };
    let (framed, result) = if gzip {
        let gz = flate2::bufread::MultiGzDecoder::new(buffered);
        frame_and_decode(gz, opts, json_lines, emit)
    } else {
        frame_and_decode(buffered, opts, json_lines, emit)
    };
    stats.bytes = framed.bytes;
    stats.examined = framed.examined;
    stats.values = framed.values;
    match result {
        Ok(()) => {}
        Err(FrameError::NotJson { start }) => stats.not_json = Some(start),
        Err(FrameError::Invalid { at, reason }) => emit(Decoded::Problem(Problem {
            location: Some(at),
            reason: format!("invalid JSON: {reason}; the rest of the document is skipped"),
            severity: Severity::Skipped,
        })),
        Err(FrameError::Read { at, error }) => emit(Decoded::Problem(Problem {
            location: Some(at),
            reason: format!(
                "reading failed: {error}{}; the rest of the file is skipped",
                if gzip {
                    " (truncated or corrupt gzip)"
                } else {
                    ""
                }
            ),
            severity: Severity::Skipped,
        })),
    }
    stats
}

fn frame_and_decode<R: Read>(
    reader: R,
    opts: &DecodeOptions,
    json_lines: bool,
    emit: &mut dyn FnMut(Decoded),
) -> (frame::FrameStats, Result<(), FrameError>) {
    let mut sink = Sink { opts, emit };
    frame::frame_from(reader, opts.max_record_bytes, json_lines, &mut sink)
}

struct Sink<'a, 'b> {
    opts: &'a DecodeOptions,
    emit: &'b mut dyn FnMut(Decoded),
}

impl frame::FrameSink for Sink<'_, '_> {
    fn record(&mut self, bytes: &[u8], location: &Location, line_hint: bool) -> Verdict {
        let mut ctx = Ctx {
            opts: self.opts,
            location,
            emit: &mut *self.emit,
        };
        decode_slice(bytes, line_hint, Via::Direct, &mut ctx)
    }

    fn problem(&mut self, location: Location, reason: String) {
        (self.emit)(Decoded::Problem(Problem {
            location: Some(location),
            reason: clip(reason),
            severity: Severity::Skipped,
        }));
    }
}

/// Why a record produced no signal.
#[derive(Debug)]
pub struct Reject {
    pub reason: String,
    pub severity: Severity,
}

impl Reject {
    pub fn skip(reason: impl Into<String>) -> Reject {
        Reject {
            reason: reason.into(),
            severity: Severity::Skipped,
        }
    }
    pub fn ignore(reason: impl Into<String>) -> Reject {
        Reject {
            reason: reason.into(),
            severity: Severity::Ignored,
        }
    }
}

impl From<String> for Reject {
    fn from(reason: String) -> Reject {
        Reject::skip(reason)
    }
}

impl From<&str> for Reject {
    fn from(reason: &str) -> Reject {
        Reject::skip(reason)
    }
}

struct Ctx<'a, 'b> {
    opts: &'a DecodeOptions,
    location: &'a Location,
    emit: &'b mut dyn FnMut(Decoded),
}

impl Ctx<'_, '_> {
    fn reject(&mut self, r: Reject, element: Option<(&str, u64)>) {
        let mut location = self.location.clone();
        if let Some((key, i)) = element {
            location.element = Some((key.to_string(), i));
        }
        (self.emit)(Decoded::Problem(Problem {
            location: Some(location),
            reason: clip(r.reason),
            severity: r.severity,
        }));
    }
}

/// How a record reached us: as itself, or inside an envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    EventBridge,
    LookupEvents,
}

/// The union of the top-level keys of every non-CloudTrail record family (envelopes,
/// GuardDuty findings, ASFF findings, wrappers), parsed in one pass. GuardDuty's camelCase and
/// PascalCase spellings share fields through aliases. CloudTrail, the bulk of any input, has
/// its own smaller struct, [`cloudtrail::Record`], tried first.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RawRecord<'a> {
    // CloudTrail LookupEvents element
    #[serde(rename = "CloudTrailEvent", borrow)]
    pub cloudtrail_event: LenientStr<'a>,

    // EventBridge envelope
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: LenientStr<'a>,
    #[serde(borrow)]
    pub detail: Option<&'a RawValue>,

    // GuardDuty (camelCase, PascalCase) and ASFF, where the names coincide
    #[serde(rename = "schemaVersion", alias = "SchemaVersion", borrow)]
    pub schema_version: LenientStr<'a>,
    #[serde(alias = "Id", borrow)]
    pub id: LenientStr<'a>,
    #[serde(alias = "Arn", borrow)]
    pub arn: LenientStr<'a>,
    #[serde(rename = "type", alias = "Type", borrow)]
    pub finding_type: LenientStr<'a>,
    #[serde(rename = "accountId", alias = "AccountId", borrow)]
    pub account_id: LenientStr<'a>,
    #[serde(alias = "Region", borrow)]
    pub region: LenientStr<'a>,
    #[serde(alias = "Severity")]
    pub severity: guardduty::SeverityValue,
    #[serde(alias = "Title", borrow)]
    pub title: LenientStr<'a>,
    #[serde(rename = "createdAt", alias = "CreatedAt", borrow)]
    pub created_at: LenientTime<'a>,
    #[serde(rename = "updatedAt", alias = "UpdatedAt", borrow)]
    pub updated_at: LenientTime<'a>,
    #[serde(alias = "Resource", borrow)]
    pub resource: Option<Box<guardduty::Resource<'a>>>,
    #[serde(alias = "Service", borrow)]
    pub service: Option<Box<guardduty::Service<'a>>>,

    // ASFF only
    #[serde(rename = "ProductArn", borrow)]
    pub product_arn: LenientStr<'a>,
    #[serde(rename = "GeneratorId", borrow)]
    pub generator_id: LenientStr<'a>,
    #[serde(rename = "AwsAccountId", borrow)]
    pub aws_account_id: LenientStr<'a>,
    #[serde(rename = "Types", borrow)]
    pub types: Option<Vec<LenientStr<'a>>>,
    #[serde(rename = "FirstObservedAt", borrow)]
    pub first_observed_at: LenientTime<'a>,
    #[serde(rename = "LastObservedAt", borrow)]
    pub last_observed_at: LenientTime<'a>,
    #[serde(rename = "Resources", borrow)]
    pub resources: Option<Vec<asff::Resource<'a>>>,
    #[serde(rename = "ProductFields", borrow)]
    pub product_fields: Option<BTreeMap<Cow<'a, str>, LenientStr<'a>>>,
    #[serde(rename = "RecordState", borrow)]
    pub record_state: LenientStr<'a>,
    #[serde(rename = "Action", borrow)]
    pub asff_action: Option<Box<guardduty::Action<'a>>>,

    // Wrappers met inside a record (not first in a document, or in an EventBridge detail)
    #[serde(rename = "Records", borrow)]
    pub records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "Events", borrow)]
    pub events: Option<Vec<&'a RawValue>>,
    #[serde(rename = "findings", alias = "Findings", borrow)]
    pub findings: Option<Vec<&'a RawValue>>,

    /// Not a JSON key: set from [`DecodeOptions::keep_sample_findings`].
    #[serde(skip)]
    pub keep_samples: bool,
}

impl RawRecord<'_> {
    fn looks_like_asff(&self) -> bool {
        self.schema_version.get() == Some("2018-10-08")
            || (self.product_arn.get().is_some() && self.resources.is_some())
    }

    /// A GuardDuty finding: a `type` with `resource` or `service`, and a `schemaVersion` or
    /// `arn`. (`resource` is required by the model, but published findings are seen without
    /// it; they still decode, naming fewer entities.)
    fn looks_like_guardduty(&self) -> bool {
        self.finding_type.get().is_some()
            && (self.resource.is_some() || self.service.is_some())
            && (self.schema_version.get().is_some() || self.arn.get().is_some())
    }
}

/// Parses one record's bytes and emits what it yields.
fn decode_slice(bytes: &[u8], line_hint: bool, via: Via, ctx: &mut Ctx<'_, '_>) -> Verdict {
    // UTF-8 is checked once for the whole record, so the parser need not check every string.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            ctx.reject(
                Reject::skip(format!(
                    "record is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                )),
                None,
            );
            return Verdict::Invalid;
        }
    };
    // CloudTrail first, with its own small struct: it is the bulk of any input, and one
    // parse is all it needs. It stops at the first key no CloudTrail record has at its top
    // level (a GuardDuty finding's `schemaVersion`), so other records are parsed in full once.
    let mut de = serde_json::Deserializer::from_str(text);
    // With Sigma rules, the keys as written are kept: they give their reader the members.
    match cloudtrail::parse_top_level(&mut de, ctx.opts.sigma.is_some()) {
        Ok(Some(ct)) => {
            if let Err(e) = de.end() {
                if line_hint {
                    return Verdict::Rescan;
                }
                ctx.reject(Reject::skip(format!("record is not valid JSON: {e}")), None);
                return Verdict::Invalid;
            }
            if ct.looks_like_cloudtrail() {
                emit_cloudtrail(&ct, text, via, ctx);
                return Verdict::Done;
            }
        }
        Ok(None) => {}
        Err(e) => return parse_error(e, line_hint, ctx),
    }
    let mut de = serde_json::Deserializer::from_str(text);
    match RawRecord::deserialize(&mut de) {
        Ok(mut rec) => {
            if let Err(e) = de.end() {
                if line_hint {
                    return Verdict::Rescan;
                }
                ctx.reject(Reject::skip(format!("record is not valid JSON: {e}")), None);
                return Verdict::Invalid;
            }
            rec.keep_samples = ctx.opts.keep_sample_findings;
            dispatch(&rec, via, ctx);
        }
        Err(e) => return parse_error(e, line_hint, ctx),
    }
    Verdict::Done
}

/// Reports a record that did not parse: a line that ends too soon may be part of a
/// pretty-printed record and is framed again by structure; a shape we cannot read costs the
/// record; broken JSON also tells the framer to resynchronise.
fn parse_error(e: serde_json::Error, line_hint: bool, ctx: &mut Ctx<'_, '_>) -> Verdict {
    if line_hint && e.is_eof() {
        return Verdict::Rescan;
    }
    let (reason, verdict) = if e.is_data() {
        (
            format!("record has an unexpected shape: {e}"),
            Verdict::Done,
        )
    } else if e.is_eof() {
        (format!("record is truncated: {e}"), Verdict::Invalid)
    } else {
        (format!("record is not valid JSON: {e}"), Verdict::Invalid)
    };
    ctx.reject(Reject::skip(reason), None);
    verdict
}

/// Whether the call is of a compute-buying API: always decoded (the baselines and the graph
/// learn from it whether or not a rule takes it).
fn is_launch_call(ct: &cloudtrail::Record<'_>, launches: &crate::launch::Catalog) -> bool {
    matches!((ct.event_source.get(), ct.event_name.get()), (Some(s), Some(n)) if launches.covers(s, n))
}

fn emit_cloudtrail(ct: &cloudtrail::Record<'_>, text: &str, via: Via, ctx: &mut Ctx<'_, '_>) {
    let bytes = text.as_bytes();
    // Sigma rules see only the calls their literal event names or sources can match (the
    // set hands a record only to the rules of its call).
    let sigma = ctx.opts.sigma.as_deref();
    let hits = match (sigma, ct.event_source.get(), ct.event_name.get()) {
        (Some(set), Some(source), Some(name)) => {
            // The first parse found the members; their keys say where each one lies.
            set.evaluate(source, name, text, ct.keys.as_deref())
        }
        _ => Vec::new(),
    };
    // A record with every field a signal requires that no one needs is only counted.
    let unneeded = ctx
        .opts
        .calls
        .as_ref()
        .is_some_and(|calls| !is_launch_call(ct, &ctx.opts.launches) && calls.counted_only(ct));
    if unneeded
        && hits.is_empty()
        && let Ok(time) = ct.event_time.require("eventTime")
    {
        (ctx.emit)(Decoded::Unneeded(kind_of(Family::CloudTrail, via), time));
        return;
    }
    match cloudtrail::decode(ct, bytes, &ctx.opts.launches) {
        Ok(s) => {
            let matches: Vec<Signal> = match sigma {
                Some(set) => hits.iter().map(|&i| set.signal(i, &s)).collect(),
                None => Vec::new(),
            };
            let kind = kind_of(Family::CloudTrail, via);
            // The call itself stays counted only when no one needs it; its Sigma matches
            // are what a rule may select.
            if unneeded {
                (ctx.emit)(Decoded::Unneeded(kind, s.time));
            } else {
                (ctx.emit)(Decoded::Signal(kind, Box::new(s)));
            }
            for m in matches {
                (ctx.emit)(Decoded::Sigma(kind, Box::new(m)));
            }
        }
        Err(reason) => ctx.reject(Reject::skip(reason), None),
    }
}

fn dispatch(rec: &RawRecord<'_>, via: Via, ctx: &mut Ctx<'_, '_>) {
    if let Some(detail_type) = rec.detail_type.get() {
        return eventbridge(rec, detail_type, via, ctx);
    }
    if let Some(inner) = rec.cloudtrail_event.get() {
        if via == Via::LookupEvents {
            return ctx.reject(
                Reject::skip("nested `CloudTrailEvent` inside a LookupEvents event"),
                None,
            );
        }
        return decode_nested(inner, Via::LookupEvents, Expect::CloudTrail, ctx);
    }
    let result = if rec.looks_like_asff() {
        asff::decode(rec).map(|s| (kind_of(Family::Asff, via), s))
    } else if rec.looks_like_guardduty() {
        let source = crate::signal::Source::GuardDuty;
        guardduty::decode(rec, source).map(|s| (kind_of(Family::GuardDuty, via), s))
    } else if rec.records.is_some() || rec.events.is_some() || rec.findings.is_some() {
        for (key, list) in [
            ("Records", &rec.records),
            ("Events", &rec.events),
            ("findings", &rec.findings),
        ] {
            for (i, raw) in list.iter().flatten().enumerate() {
                let mut location = ctx.location.clone();
                location.element = Some((key.to_string(), i as u64));
                let mut inner = Ctx {
                    opts: ctx.opts,
                    location: &location,
                    emit: &mut *ctx.emit,
                };
                let next_via = if via == Via::EventBridge {
                    via
                } else {
                    Via::Direct
                };
                decode_slice(raw.get().as_bytes(), false, next_via, &mut inner);
            }
        }
        return;
    } else if rec.finding_type.get().is_some() {
        Err(Reject::skip(format!(
            "finding of unknown shape (type {}): no `resource` (GuardDuty) or `ProductArn`/`Resources` (ASFF)",
            quote(rec.finding_type.get().unwrap_or_default())
        )))
    } else {
        Err(Reject::skip(NOT_A_RECORD))
    };
    match result {
        Ok((kind, signal)) => (ctx.emit)(Decoded::Signal(kind, Box::new(signal))),
        Err(r) => ctx.reject(r, None),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    CloudTrail,
    GuardDuty,
    Asff,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    CloudTrail,
    GuardDuty,
    Asff,
}

fn kind_of(family: Family, via: Via) -> RecordKind {
    match (family, via) {
        (Family::CloudTrail, Via::LookupEvents) => RecordKind::CloudTrailLookupEvents,
        (Family::CloudTrail, Via::EventBridge) => RecordKind::CloudTrailEventBridge,
        (Family::CloudTrail, Via::Direct) => RecordKind::CloudTrail,
        (Family::GuardDuty, Via::EventBridge) => RecordKind::GuardDutyEventBridge,
        (Family::GuardDuty, _) => RecordKind::GuardDuty,
        (Family::Asff, Via::EventBridge) => RecordKind::AsffEventBridge,
        (Family::Asff, _) => RecordKind::Asff,
    }
}

fn eventbridge(rec: &RawRecord<'_>, detail_type: &str, via: Via, ctx: &mut Ctx<'_, '_>) {
    if via != Via::Direct {
        return ctx.reject(
            Reject::skip("EventBridge envelope nested in another envelope"),
            None,
        );
    }
    let Some(detail) = rec.detail else {
        return ctx.reject(
            Reject::skip(format!(
                "EventBridge event {} without `detail`",
                quote(detail_type)
            )),
            None,
        );
    };
    let expect = if detail_type.ends_with("via CloudTrail") {
        Expect::CloudTrail
    } else if detail_type == "GuardDuty Finding" {
        Expect::GuardDuty
    } else if detail_type.starts_with("Security Hub Findings") {
        Expect::Asff
    } else {
        return ctx.reject(
            Reject::ignore(format!(
                "EventBridge event of detail-type {} carries no CloudTrail record or finding",
                quote(detail_type)
            )),
            None,
        );
    };
    decode_nested(detail.get(), Via::EventBridge, expect, ctx);
}

/// Decodes a record carried inside another (EventBridge `detail`, LookupEvents
/// `CloudTrailEvent`) and checks that it is of the family the envelope promises.
fn decode_nested(text: &str, via: Via, expect: Expect, ctx: &mut Ctx<'_, '_>) {
    let bytes = text.as_bytes();
    let what = if via == Via::LookupEvents {
        "`CloudTrailEvent`"
    } else {
        "`detail`"
    };
    if expect == Expect::CloudTrail {
        return match serde_json::from_slice::<cloudtrail::Record<'_>>(bytes) {
            Ok(ct) if ct.looks_like_cloudtrail() => emit_cloudtrail(&ct, text, via, ctx),
            Ok(_) => ctx.reject(
                Reject::skip(format!("{what} should hold a CloudTrail record, but has no `eventSource` or `eventName`")),
                None,
            ),
            Err(e) => ctx.reject(Reject::skip(format!("{what} is not a valid record: {e}")), None),
        };
    }
    let rec = match serde_json::from_slice::<RawRecord<'_>>(bytes) {
        Ok(mut r) => {
            r.keep_samples = ctx.opts.keep_sample_findings;
            r
        }
        Err(e) => {
            return ctx.reject(
                Reject::skip(format!("{what} is not a valid record: {e}")),
                None,
            );
        }
    };
    let ok = match expect {
        Expect::CloudTrail => false,
        Expect::GuardDuty => rec.looks_like_guardduty() || rec.finding_type.get().is_some(),
        Expect::Asff => rec.findings.is_some() || rec.looks_like_asff(),
    };
    if !ok {
        let family = if expect == Expect::GuardDuty {
            "GuardDuty finding"
        } else {
            "Security Hub findings"
        };
        return ctx.reject(
            Reject::skip(format!(
                "{what} should hold a {family}, but its content is not one"
            )),
            None,
        );
    }
    dispatch(&rec, via, ctx);
}

/// The reference of a record that carries no id of its own (a CloudTrail record without
/// `eventID`): [`stable_hash`] of its content written canonically (members sorted by key,
/// no white space, strings and numbers as serde_json writes them), so the same record read
/// from two sources that lay it out differently is one signal. A text that does not parse is
/// hashed as it is.
pub fn record_hash(raw: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(v) => stable_hash(v.to_string().as_bytes()),
        Err(_) => stable_hash(raw),
    }
}

/// A stable 64-bit FNV-1a hash (hex) of a record's JSON with insignificant white space
/// removed, so that the same record pretty-printed or compact gets the same reference.
pub fn stable_hash(raw: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod quote_tests {
    use super::*;

    #[test]
    fn a_reason_quotes_at_most_64_bytes_of_each_value_and_says_how_long_it_was() {
        let long = "é".repeat(100);
        let cases = [
            // Short runs and text outside quotes are left alone.
            (
                r#"invalid type: string "abc", expected u64"#.to_string(),
                None,
            ),
            // A long run, closed: cut at a character boundary, its length said.
            (
                format!("invalid type: string {long:?}, expected u64"),
                Some(200),
            ),
            // Escapes are never cut in half.
            (format!("bad {:?}", "\"".repeat(80)), Some(160)),
            // A run the text ends inside.
            (format!("cut \"{}", "x".repeat(90)), Some(90)),
        ];
        for (reason, quoted) in cases {
            let got = shorten_quotes(reason.clone());
            match quoted {
                None => assert_eq!(got, reason),
                Some(n) => {
                    assert!(got.contains(&format!("… ({n} bytes quoted)")), "{got}");
                    let run = &got[got.find('"').unwrap() + 1..got.find("\"…").unwrap()];
                    assert!(run.len() <= QUOTE_MAX, "{got}");
                    assert!(!run.ends_with('\\') || run.ends_with("\\\\"), "{got}");
                }
            }
        }
        // Several runs, each on its own.
        let two = format!("{:?} and {:?}", "a".repeat(70), "b".repeat(10));
        let got = shorten_quotes(two);
        assert!(
            got.contains("(70 bytes quoted) and \"bbbbbbbbbb\""),
            "{got}"
        );
    }
}

#[cfg(test)]
mod record_hash_tests {
    use super::*;

    #[test]
    fn a_record_hashes_the_same_whatever_its_layout() {
        let a = br#"{"eventName":"RunInstances","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/A"},"n":[1,2.5,"x"]}"#;
        let b = b"{ \"n\" : [ 1, 2.5, \"\\u0078\" ],\n  \"userIdentity\": {\"arn\": \"arn:aws:iam::1:user/\\u0041\", \"type\": \"IAMUser\"},\n  \"eventName\": \"RunInstances\" }";
        assert_eq!(record_hash(a), record_hash(b));
        // Another value is another record.
        let c = br#"{"eventName":"RunInstances","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/B"},"n":[1,2.5,"x"]}"#;
        assert_ne!(record_hash(a), record_hash(c));
    }
}
