//! AWS partitions and their regions, from `data/partitions.json` (generated from botocore's
//! partitions data by `data/gen_partitions.py`; see `data/README.md`).
//!
//! A region's partition follows from its name's prefix (`cn-` → `aws-cn`, `us-gov-` →
//! `aws-us-gov`), so configuration checks need no AWS call, and a region newer than this list
//! still gets its partition. Hands on [`classify`] and [`partition_of_arn`]; the list only
//! tells known regions from plausible new ones, it never drops a region.

use std::sync::OnceLock;

const DATA: &str = include_str!("../data/partitions.json");

#[derive(Debug, serde::Deserialize)]
struct Data {
    partitions: Vec<Partition>,
}

/// One partition: its id, the region name prefixes of its `regionRegex`, its known regions.
#[derive(Debug, serde::Deserialize)]
pub struct Partition {
    pub id: String,
    prefixes: Vec<String>,
    regions: Vec<String>,
}

fn partitions() -> &'static [Partition] {
    static DATA_PARSED: OnceLock<Vec<Partition>> = OnceLock::new();
    DATA_PARSED.get_or_init(|| {
        // The file is part of the build and checked by a unit test.
        serde_json::from_str::<Data>(DATA)
            .map(|d| d.partitions)
            .unwrap_or_default()
    })
}

/// What a region name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region<'a> {
    /// A region of the list, in this partition.
    Known(&'a str),
    /// Shaped like a region of this partition (`PREFIX-word-N`) but not in the list: newer
    /// than the list, or a typo.
    Unknown(&'a str),
    /// Shaped like a region (`word-word-N`) but of no known partition.
    NoPartition,
    /// Not a region name.
    Invalid,
}

/// `word-…-N`: lowercase words joined by `-`, ending in a number.
fn shaped(name: &str) -> bool {
    let Some((words, number)) = name.rsplit_once('-') else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && words.split('-').count() >= 2
        && words
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Classifies a region name.
pub fn classify(name: &str) -> Region<'static> {
    if !shaped(name) {
        return Region::Invalid;
    }
    for p in partitions() {
        if p.regions.iter().any(|r| r == name) {
            return Region::Known(&p.id);
        }
    }
    for p in partitions() {
        for prefix in &p.prefixes {
            // PREFIX-word-N, one word between the prefix and the number.
            let Some(rest) = name
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix('-'))
            else {
                continue;
            };
            if rest.matches('-').count() == 1 {
                return Region::Unknown(&p.id);
            }
        }
    }
    Region::NoPartition
}

/// The partition of a region name, when its prefix names one.
pub fn partition_of_region(name: &str) -> Option<&'static str> {
    match classify(name) {
        Region::Known(p) | Region::Unknown(p) => Some(p),
        Region::NoPartition | Region::Invalid => None,
    }
}

/// Whether `id` is a known partition (`aws`, `aws-cn`, `aws-us-gov`, …).
pub fn is_partition(id: &str) -> bool {
    partitions().iter().any(|p| p.id == id)
}

/// The known partition ids, for messages.
pub fn partition_ids() -> Vec<&'static str> {
    partitions().iter().map(|p| p.id.as_str()).collect()
}

/// The partition of an ARN (`arn:PARTITION:service:…`).
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, _) = rest.split_once(':')?;
    (!partition.is_empty()).then_some(partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_loads() {
        let d: Data = serde_json::from_str(DATA).expect("data/partitions.json parses");
        assert!(d.partitions.iter().any(|p| p.id == "aws"));
        assert!(partitions().len() >= 3);
    }

    #[test]
    fn region_names_are_classified_by_their_prefix() {
        for (name, want) in [
            ("us-east-1", Region::Known("aws")),
            ("ap-southeast-3", Region::Known("aws")),
            ("ap-southeast-99", Region::Unknown("aws")),
            ("eu-mars-1", Region::Unknown("aws")),
            ("cn-north-1", Region::Known("aws-cn")),
            ("cn-south-7", Region::Unknown("aws-cn")),
            ("us-gov-west-1", Region::Known("aws-us-gov")),
            ("us-gov-north-3", Region::Unknown("aws-us-gov")),
            ("us-iso-east-1", Region::Known("aws-iso")),
            ("us-isob-east-9", Region::Unknown("aws-iso-b")),
            ("zz-east-1", Region::NoPartition),
            ("us-east", Region::Invalid),
            ("US-EAST-1", Region::Invalid),
            ("useast1", Region::Invalid),
            ("us-east-1a", Region::Invalid),
            ("us_east_1", Region::Invalid),
            ("us--east-1", Region::Invalid),
            (" us-east-1", Region::Invalid),
            ("", Region::Invalid),
        ] {
            assert_eq!(classify(name), want, "{name:?}");
        }
    }

    #[test]
    fn arns_name_their_partition() {
        for (arn, want) in [
            (
                "arn:aws-cn:sts::123456789012:assumed-role/r/s",
                Some("aws-cn"),
            ),
            ("arn:aws:iam::111122223333:user/alice", Some("aws")),
            ("arn::iam::1:user/a", None),
            ("not-an-arn", None),
        ] {
            assert_eq!(partition_of_arn(arn), want, "{arn}");
        }
    }
}
