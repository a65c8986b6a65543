//! Where records come from. Files and folders now; the AWS APIs come later and hand the same
//! bytes to the same decoders.

pub mod file;
