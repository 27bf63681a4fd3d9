//! `arrowfeed take`: rows by index (or at random) from a store, a Hugging Face directory or a
//! file, into a file.

use std::path::Path;

use arrowfeed::source::{BatchWriter, WriteCompression};
use arrowfeed::traits::RandomAccess;

use crate::input::{Rng, projection, random_access};
use crate::{CliResult, Failure};

pub(crate) fn run(
    path: &Path,
    indices: Option<Vec<u64>>,
    random: Option<u64>,
    seed: u64,
    columns: Option<Vec<String>>,
    out: &Path,
) -> CliResult {
    let format = BatchWriter::format_for(out)
        .map_err(|e| Failure::Usage(e.to_string().replace("invalid argument: ", "")))?;
    let ra = random_access(path)?;
    let n = ra.num_rows();
    let idx = match (indices, random) {
        (Some(i), _) => i,
        (None, Some(k)) => {
            if n == 0 {
                return Err(Failure::at(path, "the dataset has no rows to sample"));
            }
            let mut rng = Rng(seed);
            (0..k).map(|_| rng.below(n)).collect()
        }
        (None, None) => return Err(Failure::Usage("give --indices or --random".into())),
    };
    let proj = projection(&ra.schema(), columns).map_err(|e| Failure::at(path, e))?;
    let batch = ra
        .take(&idx, proj.as_deref())
        .map_err(|e| Failure::at(path, e))?;
    let mut w = BatchWriter::create(out, format, batch.schema(), WriteCompression::Default)
        .map_err(|e| Failure::at(out, e))?;
    w.write(&batch).map_err(|e| Failure::at(out, e))?;
    w.finish().map_err(|e| Failure::at(out, e))?;
    eprintln!("wrote {} rows to {}", batch.num_rows(), out.display());
    Ok(())
}
