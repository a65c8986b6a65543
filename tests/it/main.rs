//! One integration test binary (as ripgrep and cargo do): every module below is a group of
//! tests over the public API or the `correlator` binary.

mod common;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
mod aws_mock;
mod bad_input;
mod call_filter;
mod cli;
mod decode_fixtures;
mod deploy;
mod detection_data;
mod environment;
mod exports;
mod finding_updates;
mod framing;
mod fuzz;
mod graph_scenario;
mod incremental;
mod launches;
mod neighbourhood;
mod property;
#[cfg(feature = "aws")]
mod queue;
mod realdata;
mod report;
mod rules;
mod scenarios;
mod shards;
#[cfg(feature = "sigma")]
mod sigma;
mod state_inspect;
