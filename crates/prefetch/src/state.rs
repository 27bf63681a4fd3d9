//! `LoaderState`: where an epoch stands and which run it belongs to, its printed form and
//! the strict parser that reads it back.

use std::fmt;
use std::str::FromStr;

use arrowfeed_traits::{Error, Result};

use crate::loader::Remainder;
#[cfg(doc)]
use crate::loader::{Loader, LoaderIter};
use crate::sampler::Shuffle;

/// Where an epoch stands, and what it belongs to: enough to reproduce exactly the batches not
/// yet delivered, with any number of workers, and to refuse a loader it does not belong to.
///
/// Made by [`Loader::state`] and [`LoaderIter::state`]; prints as
/// `arrowfeed-loader/v2:seed=…,epoch=…,…` and parses back ([`FromStr`]). [`Loader::resume`]
/// refuses a state taken with another seed, batch size, `drop_last`, shuffle, remainder policy
/// or dataset, naming the setting. A different world size is not an error: see
/// [`Loader::resume`] for elastic resume.
///
/// The printed format is versioned; version 1 states (`arrowfeed-loader/v1:SEED:EPOCH:POSITION`)
/// are refused, because they do not say which run they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoaderState {
    /// The shuffle seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// Batches delivered to this rank since [`start`](Self::start).
    pub position: u64,
    /// Positions of the epoch's order that all ranks together had consumed when this rank's
    /// run began: 0 from the start of an epoch, more after an elastic resume.
    pub start: u64,
    /// Rows per batch.
    pub batch_size: u64,
    /// Whether the last, short batch of each rank's epoch is dropped.
    pub drop_last: bool,
    /// The epoch order.
    pub shuffle: Shuffle,
    /// The remainder policy.
    pub remainder: Remainder,
    /// The rank the state was taken on.
    pub rank: u64,
    /// The number of ranks then.
    pub world_size: u64,
    /// A fingerprint of the dataset: its row count and partition boundaries.
    pub dataset: u64,
}

const STATE_V1: &str = "arrowfeed-loader/v1:";
const STATE_V2: &str = "arrowfeed-loader/v2:";

impl fmt::Display for LoaderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shuffle = match self.shuffle {
            Shuffle::None => "none".to_owned(),
            Shuffle::Global => "global".to_owned(),
            Shuffle::Local { window } => format!("local-{window}"),
        };
        let remainder = match self.remainder {
            Remainder::Drop => "drop",
            Remainder::Pad => "pad",
        };
        write!(
            f,
            "{STATE_V2}seed={},epoch={},position={},start={},batch_size={},drop_last={},\
             shuffle={shuffle},remainder={remainder},rank={},world_size={},dataset={:016x}",
            self.seed,
            self.epoch,
            self.position,
            self.start,
            self.batch_size,
            u8::from(self.drop_last),
            self.rank,
            self.world_size,
            self.dataset
        )
    }
}

/// The keys of a printed v2 state, in order.
const STATE_KEYS: [&str; 11] = [
    "seed",
    "epoch",
    "position",
    "start",
    "batch_size",
    "drop_last",
    "shuffle",
    "remainder",
    "rank",
    "world_size",
    "dataset",
];

impl FromStr for LoaderState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::invalid_argument(format!("{s:?} is not a loader state: {why}"));
        if s.starts_with(STATE_V1) {
            return Err(Error::invalid_argument(format!(
                "{s:?} is a version 1 loader state, which does not record the batch size, \
                 shuffle, world size or dataset it was taken with, so it cannot be checked \
                 against a loader; start the epoch again (Loader::epoch) or save a version 2 \
                 state"
            )));
        }
        let rest = s
            .strip_prefix(STATE_V2)
            .ok_or_else(|| bad("it does not start with arrowfeed-loader/v2:"))?;
        let mut values = [""; STATE_KEYS.len()];
        let mut parts = rest.split(',');
        for (key, value) in STATE_KEYS.iter().zip(values.iter_mut()) {
            let part = parts
                .next()
                .ok_or_else(|| bad(&format!("{key} is missing")))?;
            *value = part
                .strip_prefix(key)
                .and_then(|p| p.strip_prefix('='))
                .ok_or_else(|| bad(&format!("expected {key}=… where it says {part:?}")))?;
        }
        if parts.next().is_some() {
            return Err(bad("it has more fields than version 2 has"));
        }
        let [
            seed,
            epoch,
            position,
            start,
            batch_size,
            drop_last,
            shuffle,
            remainder,
            rank,
            world_size,
            dataset,
        ] = values;
        let int = |key: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| bad(&format!("{key}={v:?} is not a whole number")))
        };
        let shuffle = match shuffle {
            "none" => Shuffle::None,
            "global" => Shuffle::Global,
            other => match other.strip_prefix("local-").map(str::parse::<usize>) {
                Some(Ok(window)) if window > 0 => Shuffle::Local { window },
                _ => {
                    return Err(bad(&format!(
                        "shuffle={other:?} is not none, global or local-N"
                    )));
                }
            },
        };
        let remainder = match remainder {
            "drop" => Remainder::Drop,
            "pad" => Remainder::Pad,
            other => return Err(bad(&format!("remainder={other:?} is not drop or pad"))),
        };
        let drop_last = match drop_last {
            "0" => false,
            "1" => true,
            other => return Err(bad(&format!("drop_last={other:?} is not 0 or 1"))),
        };
        let state = Self {
            seed: int("seed", seed)?,
            epoch: int("epoch", epoch)?,
            position: int("position", position)?,
            start: int("start", start)?,
            batch_size: int("batch_size", batch_size)?,
            drop_last,
            shuffle,
            remainder,
            rank: int("rank", rank)?,
            world_size: int("world_size", world_size)?,
            dataset: u64::from_str_radix(dataset, 16)
                .ok()
                .filter(|_| dataset.len() == 16)
                .ok_or_else(|| bad(&format!("dataset={dataset:?} is not 16 hex digits")))?,
        };
        if state.batch_size == 0 {
            return Err(bad("batch_size is 0"));
        }
        if state.rank >= state.world_size {
            return Err(bad(&format!(
                "rank {} is not below world_size {}",
                state.rank, state.world_size
            )));
        }
        Ok(state)
    }
}

/// FNV-1a over the row count and the partition boundaries: which dataset a state belongs to.
pub(crate) fn fingerprint(n: u64, partitions: &[std::ops::Range<u64>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(n);
    eat(partitions.len() as u64);
    for p in partitions {
        eat(p.start);
        eat(p.end);
    }
    h
}
