//! What an instance type buys: vCPUs, GPUs, other accelerators and memory.
//!
//! [`lookup`] is the one place the rest of the crate asks. Today it knows only what the size
//! in the name implies (`xlarge` = 4 vCPUs, `Nxlarge` = 4·N, `large` = 2); GPUs, accelerators
//! and memory are unknown, and so are bare-metal sizes, which vary by family.

/// What one instance of a type has. `None` where the source does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceSpec {
    pub vcpus: Option<u32>,
    pub gpus: Option<u32>,
    /// Accelerators other than GPUs (Inferentia, Trainium, Gaudi, FPGAs).
    pub accelerators: Option<u32>,
    pub memory_mib: Option<u64>,
}

/// The spec of an EC2 (`p5.48xlarge`) or SageMaker (`ml.p5.48xlarge`) instance type, or `None`
/// when nothing is known of it.
pub fn lookup(instance_type: &str) -> Option<InstanceSpec> {
    let name = instance_type.strip_prefix("ml.").unwrap_or(instance_type);
    vcpus_from_size(name).map(|v| InstanceSpec {
        vcpus: Some(v),
        ..InstanceSpec::default()
    })
}

/// vCPUs of an instance type, for records without `cpuOptions`.
pub fn vcpus(instance_type: &str) -> Option<u32> {
    lookup(instance_type).and_then(|s| s.vcpus)
}

fn vcpus_from_size(instance_type: &str) -> Option<u32> {
    let (family, size) = instance_type.rsplit_once('.')?;
    match size {
        // Older burstable and first-generation families have one vCPU at these sizes.
        "nano" | "micro" | "small" if ["t1", "t2", "m1", "m3", "c1"].contains(&family) => Some(1),
        "nano" | "micro" | "small" => Some(2),
        "medium" | "large" => Some(2),
        "xlarge" => Some(4),
        _ => size
            .strip_suffix("xlarge")
            .and_then(|n| n.parse::<u32>().ok())
            .map(|n| n.saturating_mul(4)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpus_from_the_size() {
        for (t, want) in [
            ("p2.xlarge", Some(4)),
            ("p3.16xlarge", Some(64)),
            ("p4d.24xlarge", Some(96)),
            ("g5.12xlarge", Some(48)),
            ("t3.micro", Some(2)),
            ("t2.micro", Some(1)),
            ("c5.large", Some(2)),
            ("ml.g5.12xlarge", Some(48)),
            ("c5.metal", None),
            ("bogus", None),
        ] {
            assert_eq!(vcpus(t), want, "{t}");
        }
    }
}
