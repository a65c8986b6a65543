//! Where records come from on disk: files and folders. AWS mode's sources (the GuardDuty,
//! Security Hub and CloudTrail APIs, a trail's S3 objects) are in `crate::aws::sources` and
//! hand their response bodies to the same decoders.

pub mod file;
