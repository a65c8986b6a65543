//! finding-correlator: GuardDuty findings and CloudTrail events, joined in an entity graph of
//! EC2 instance groups.
//!
//! The pipeline: sources (files now; AWS APIs later) hand bytes to `normalize`, which
//! recognises every input shape by content and turns each record into a [`signal::Signal`];
//! the [`graph`] joins the entities signals name into instance groups (Auto Scaling group,
//! launch template, CloudFormation stack, instance profile, AMI, VPC) and records who acted as
//! and launched what; exports write the graph for investigation.

pub mod aws;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod graph;
pub mod incremental;
pub mod local_file;
pub mod matcher;
pub mod normalize;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod signal;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod summary;
pub mod time;
