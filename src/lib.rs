//! finding-correlator: GuardDuty findings and CloudTrail events, joined in an entity graph of
//! EC2 instance groups.
//!
//! The pipeline: sources (files and folders in [`sources`], or the GuardDuty, Security Hub,
//! CloudTrail and S3 APIs in [`aws`] for `correlator run`) hand bytes to [`normalize`], which
//! recognises every input shape by content and turns each record into a [`signal::Signal`];
//! the [`graph`] joins the entities signals name into instance groups (Auto Scaling group,
//! launch template, CloudFormation stack, instance profile, AMI, VPC) and records who acted as
//! and launched what; the [`matcher`] runs the [`rules`] over sliding windows into attack
//! sequences, which [`sinks::asff`] writes as findings, [`incremental`] carries from run to run
//! with the [`state`], and exports and the [`report`] draw for investigation. One pass of
//! `correlate --state` or `run` is [`run_loop::run_once`]: read, correlate, advance, write
//! through the sink, save the state last.

#[cfg(feature = "aws")]
pub mod aws;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod graph;
pub mod incremental;
pub mod instance_types;
pub mod launch;
pub mod local_file;
pub mod matcher;
pub mod normalize;
pub mod pipeline;
pub mod regions;
pub mod report;
pub mod rollup;
pub mod rules;
pub mod run_loop;
pub mod shard;
pub mod sigma;
pub mod signal;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod state_inspect;
pub mod summary;
pub mod time;
