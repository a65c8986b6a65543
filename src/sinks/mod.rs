//! Where sequences go: ASFF findings, made by [`asff`], written by the sink the configuration
//! names ([`SinkConfig`]): Security Hub (`crate::aws::sink`), a file, or stdout.

pub mod asff;
pub mod story;

use anyhow::Context;

pub use crate::state::KeptFinding;

/// `aws.sink` (with `aws.sink_file`, `aws.securityhub_region` and
/// `aws.sink_calls_per_second`), checked: where AWS mode writes its findings.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkConfig {
    /// `BatchImportFindings` (see `crate::aws::sink`).
    SecurityHub {
        /// `aws.securityhub_region`; None: the first of `aws.regions`, or the SDK's.
        region: Option<String>,
        calls_per_second: f64,
    },
    /// One JSON document `{"Findings": [...]}` per run, replacing the file.
    File(std::path::PathBuf),
    /// The same document on stdout.
    Stdout,
}

impl SinkConfig {
    /// The names `aws.sink` takes.
    pub const NAMES: [&'static str; 3] = ["securityhub", "file", "stdout"];

    /// The sink `[aws]` names.
    ///
    /// # Errors
    /// A message naming the key: an unknown `aws.sink`, or `file` without `aws.sink_file`.
    pub fn from_keys(a: &crate::config::AwsConfig) -> Result<SinkConfig, String> {
        match a.sink.as_str() {
            "securityhub" => Ok(SinkConfig::SecurityHub {
                region: (!a.securityhub_region.is_empty()).then(|| a.securityhub_region.clone()),
                calls_per_second: a.sink_calls_per_second,
            }),
            "stdout" => Ok(SinkConfig::Stdout),
            "file" if !a.sink_file.is_empty() => Ok(SinkConfig::File(a.sink_file.clone().into())),
            "file" => Err("aws.sink_file: needed when aws.sink is \"file\"".into()),
            other => Err(format!(
                "aws.sink: unknown sink {other:?} (expected securityhub, file or stdout)"
            )),
        }
    }

    /// Its `aws.sink` name.
    pub fn name(&self) -> &'static str {
        match self {
            SinkConfig::SecurityHub { .. } => "securityhub",
            SinkConfig::File(_) => "file",
            SinkConfig::Stdout => "stdout",
        }
    }

    /// The sink, for the sinks that need no AWS client (`None` for Security Hub, which
    /// `crate::aws::sink` builds).
    pub fn build_local(&self) -> Option<Box<dyn Deliver>> {
        match self {
            SinkConfig::SecurityHub { .. } => None,
            SinkConfig::File(path) => Some(Box::new(FileSink(path.clone()))),
            SinkConfig::Stdout => Some(Box::new(StdoutSink)),
        }
    }
}

/// What a sink did with the findings it was given.
#[derive(Debug, Default)]
pub struct Delivered {
    /// API calls made.
    pub calls: u64,
    /// Findings written (acknowledged).
    pub imported: usize,
    /// Findings not written: id, error code, message. The run's state forgets them, so the
    /// next run sends them again.
    pub failed: Vec<(String, String, String)>,
}

/// A built sink.
pub trait Deliver {
    /// Writes `findings`.
    ///
    /// # Errors
    /// Nothing is known written: the run saves nothing.
    fn deliver(&mut self, findings: &[KeptFinding]) -> anyhow::Result<Delivered>;
}

/// The findings document every file output writes, `{"Findings": [...]}`, pretty: each
/// finding's text is parsed as it is written, one at a time, so the document is the bytes a
/// tree of every finding would write without the trees of all of them in memory at once
/// (about 125 kB each for a finding of 37 kB of text).
pub struct FindingsDocument<'a> {
    pub findings: &'a [KeptFinding],
}

impl serde::Serialize for FindingsDocument<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};

        struct Each<'a>(&'a [KeptFinding]);
        impl serde::Serialize for Each<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for f in self.0 {
                    seq.serialize_element(&f.value())?;
                }
                seq.end()
            }
        }
        let mut doc = s.serialize_struct("FindingsDocument", 1)?;
        doc.serialize_field("Findings", &Each(self.findings))?;
        doc.end()
    }
}

/// Writes the findings document and a newline to `out`, flushed.
///
/// # Errors
/// Writing failed.
pub fn write_document(out: impl std::io::Write, findings: &[KeptFinding]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &FindingsDocument { findings })?;
    out.write_all(b"\n")?;
    out.flush()
}

/// [`SinkConfig::File`].
pub struct FileSink(pub std::path::PathBuf);

impl Deliver for FileSink {
    fn deliver(&mut self, findings: &[KeptFinding]) -> anyhow::Result<Delivered> {
        std::fs::File::create(&self.0)
            .and_then(|file| write_document(file, findings))
            .with_context(|| format!("writing `{}`", self.0.display()))?;
        Ok(Delivered {
            imported: findings.len(),
            ..Delivered::default()
        })
    }
}

/// [`SinkConfig::Stdout`].
pub struct StdoutSink;

impl Deliver for StdoutSink {
    fn deliver(&mut self, findings: &[KeptFinding]) -> anyhow::Result<Delivered> {
        write_document(std::io::stdout().lock(), findings).context("writing to stdout")?;
        Ok(Delivered {
            imported: findings.len(),
            ..Delivered::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_findings_document_is_the_bytes_a_tree_of_every_finding_writes() {
        let findings = [
            serde_json::json!({"Id": "a", "Title": "x \"q\" é", "Resources": [{"Id": "i-1", "Tags": {"k": "v"}}], "Severity": {"Normalized": 90, "Score": 2.5}}),
            serde_json::json!({"Id": "b", "Empty": {}, "List": [], "Null": null, "Neg": -0.0, "Big": 1e300}),
        ];
        let kept: Vec<KeptFinding> = findings.iter().map(KeptFinding::of).collect();
        let mut out = Vec::new();
        write_document(&mut out, &kept).unwrap();
        let tree =
            serde_json::to_string_pretty(&serde_json::json!({ "Findings": findings })).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), tree + "\n");
    }
}
