//! Shards: `aws.shard = "i/n"` splits an organization's accounts among `n` scheduled tasks.
//!
//! An account belongs to shard `1 + h mod n`, where `h` is the 64-bit FNV-1a hash of its id
//! (the 12 digits as text). The hash is written out here, not taken from the standard
//! library, whose hasher may change between Rust releases: an account must stay in its shard
//! from one build to the next, or its open sequences would move to a state that has never
//! seen them. Attack sequences stay within one account (across its regions), so each shard
//! finds the whole of every attack in its accounts.
//!
//! Each shard keeps a state of its own: [`Shard::state_location`] names it after the shard,
//! so two shards can never share (and overwrite) one state.

use std::fmt;

/// One shard of `count`, numbered from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// More shards than this is a typo rather than a deployment.
pub const MAX_SHARDS: u32 = 1024;

impl Shard {
    /// Whether `account` (a 12-digit id) belongs to this shard.
    pub fn owns(&self, account: &str) -> bool {
        shard_of(account, self.count) == self.index
    }

    /// The state location of this shard: the location with `.shard-I-of-N` appended
    /// (`s3://b/state.json` → `s3://b/state.json.shard-2-of-4`), so that one IAM resource
    /// pattern (`state.json.shard-*`) covers every shard's state. A location that already ends
    /// so is kept: a location copied from a sharded run's log or error names the same state.
    pub fn state_location(&self, location: &str) -> String {
        let tag = format!(".shard-{}-of-{}", self.index, self.count);
        if location.ends_with(&tag) {
            location.to_string()
        } else {
            format!("{location}{tag}")
        }
    }
}

/// The shard (1..=count) an account belongs to.
pub fn shard_of(account: &str, count: u32) -> u32 {
    let count = count.max(1);
    (fnv1a64(account.as_bytes()) % u64::from(count)) as u32 + 1
}

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `i/n` with 1 ≤ i ≤ n ≤ [`MAX_SHARDS`].
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?}: expected i/n, like 2/4 (shard i of n, 1 ≤ i ≤ n)");
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "{text:?}: the number of shards must be 1 to {MAX_SHARDS}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "{text:?}: shards are numbered 1 to {count}, so i must be in that range"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_64() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn accounts_keep_their_shards() {
        // Pinned: a change here moves accounts between shards, whose states do not follow.
        let got: Vec<u32> = [
            "111122223333",
            "777788880001",
            "777788880002",
            "777788880004",
            "123456789012",
        ]
        .iter()
        .map(|a| shard_of(a, 4))
        .collect();
        // Computed apart from this code (FNV-1a 64 in Python, mod 4, plus 1).
        assert_eq!(got, [2, 3, 4, 2, 4]);
    }

    #[test]
    fn every_account_is_in_exactly_one_shard_and_shards_are_even() {
        let accounts: Vec<String> = (0..4000u64)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7_919_993))
            .collect();
        for n in 1..=16u32 {
            let shards: Vec<Shard> = (1..=n).map(|index| Shard { index, count: n }).collect();
            let mut sizes = vec![0usize; n as usize];
            for a in &accounts {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(a)).collect();
                assert_eq!(owners.len(), 1, "{a} in {n} shards");
                sizes[owners[0].index as usize - 1] += 1;
            }
            let even = accounts.len() / n as usize;
            for s in sizes {
                assert!(
                    s.abs_diff(even) * 5 <= even,
                    "{n} shards: a shard of {s} accounts, {even} expected (±20 %)"
                );
            }
        }
    }

    #[test]
    fn each_shard_has_a_state_of_its_own() {
        let s = Shard { index: 2, count: 4 };
        for (loc, want) in [
            ("s3://b/state.json", "s3://b/state.json.shard-2-of-4"),
            (
                "correlator-state.json",
                "correlator-state.json.shard-2-of-4",
            ),
        ] {
            assert_eq!(s.state_location(loc), want);
            assert_eq!(s.state_location(want), want, "named twice");
        }
        // Another shard's state is another name.
        assert_eq!(
            Shard { index: 3, count: 4 }.state_location("s3://b/state.json.shard-2-of-4"),
            "s3://b/state.json.shard-2-of-4.shard-3-of-4"
        );
    }

    #[test]
    fn parse_and_refuse() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(" 1 / 1 ".parse(), Ok(Shard { index: 1, count: 1 }));
        for bad in ["", "2", "0/4", "5/4", "a/4", "1/0", "2/4/8", "1/2000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard { index: 3, count: 8 }.to_string(), "3/8");
    }
}
