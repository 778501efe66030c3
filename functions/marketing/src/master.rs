//! Writing the master dataset: Parquet and CSV side by side in a local directory, one batch
//! (one raw partition's good rows) at a time, so memory holds one partition whatever the day's
//! size.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::dataset::{schema, MASTER_NAME};

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot write the master dataset at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the master dataset: {0}")]
    Encode(#[from] PolarsError),
}

/// The local master files for one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterPaths {
    pub parquet: PathBuf,
    pub csv: PathBuf,
}

impl MasterPaths {
    pub fn under(dir: &Path) -> Self {
        Self {
            parquet: dir.join(format!("{MASTER_NAME}.parquet")),
            csv: dir.join(format!("{MASTER_NAME}.csv")),
        }
    }
}

pub struct MasterWriter {
    paths: MasterPaths,
    parquet: polars::io::parquet::write::BatchedWriter<File>,
    csv: polars::io::csv::write::BatchedWriter<File>,
    rows: u64,
}

impl MasterWriter {
    /// Creates (or truncates) both files under `dir`.
    pub fn create(dir: &Path) -> Result<Self, MasterError> {
        std::fs::create_dir_all(dir).map_err(|source| MasterError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let paths = MasterPaths::under(dir);
        let open = |path: &Path| {
            File::create(path).map_err(|source| MasterError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let schema = schema();
        let parquet = ParquetWriter::new(open(&paths.parquet)?)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&schema)?;
        // polars formats each chunk into its own buffer before writing it: no BufWriter needed.
        let csv = CsvWriter::new(open(&paths.csv)?)
            .include_header(true)
            .batched(&schema)?;
        Ok(Self {
            paths,
            parquet,
            csv,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &mut DataFrame) -> Result<(), MasterError> {
        if batch.height() == 0 {
            return Ok(());
        }
        // The writers want contiguous columns.
        batch.rechunk_mut();
        self.parquet.write_batch(batch)?;
        self.csv.write_batch(batch)?;
        self.rows += batch.height() as u64;
        Ok(())
    }

    /// Completes both files (an empty day gives a valid, empty Parquet file and a header-only
    /// CSV); returns their paths and the rows written.
    pub fn finish(mut self) -> Result<(MasterPaths, u64), MasterError> {
        self.parquet.finish()?;
        self.csv.finish()?;
        Ok((self.paths, self.rows))
    }
}
