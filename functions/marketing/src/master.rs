//! Writing the master dataset: Parquet and CSV side by side in a local directory, a batch of
//! good rows at a time, so memory holds one batch whatever the day's size.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// Bytes a file's writer produced since they were last taken.
type Pending = Arc<Mutex<Vec<u8>>>;

/// A local master file that also keeps what was written to it, so the same bytes can be
/// uploaded while the file is still being produced.
struct TeeFile {
    file: File,
    pending: Pending,
}

impl Write for TeeFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        lock(&self.pending).extend_from_slice(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The buffer is only ever touched by the one thread that runs the writer; a poisoned lock
/// still holds valid bytes.
fn lock(pending: &Pending) -> std::sync::MutexGuard<'_, Vec<u8>> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the master files grew by: the next bytes of each object to upload.
#[derive(Debug, Default)]
pub struct Produced {
    pub parquet: Vec<u8>,
    pub csv: Vec<u8>,
}

/// Good rows gathered before they are encoded: polars pays a cost per batch it writes, and
/// writing each 10,000-row partition on its own took ≈ 20 % more encoding time in
/// `etl bench marketing` than 100,000-row batches (≈ 12 MB held; BENCHMARKS.md).
const ROWS_PER_BATCH: usize = 100_000;

pub struct MasterWriter {
    paths: MasterPaths,
    /// Rows not yet encoded: fewer than [`ROWS_PER_BATCH`] between calls.
    gathered: Option<DataFrame>,
    parquet: polars::io::parquet::write::BatchedWriter<TeeFile>,
    csv: polars::io::csv::write::BatchedWriter<TeeFile>,
    parquet_pending: Pending,
    csv_pending: Pending,
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
            let file = File::create(path).map_err(|source| MasterError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let pending = Pending::default();
            let tee = TeeFile {
                file,
                pending: Arc::clone(&pending),
            };
            Ok::<_, MasterError>((tee, pending))
        };
        let schema = schema();
        let (parquet_file, parquet_pending) = open(&paths.parquet)?;
        let parquet = ParquetWriter::new(parquet_file)
            .with_compression(ParquetCompression::Zstd(
                polars::polars_utils::compression::ZstdLevel::try_new(1).ok(),
            ))
            .batched(&schema)?;
        // polars formats each chunk into its own buffer before writing it: no BufWriter needed.
        let (csv_file, csv_pending) = open(&paths.csv)?;
        let csv = CsvWriter::new(csv_file)
            .include_header(true)
            .batched(&schema)?;
        Ok(Self {
            paths,
            gathered: None,
            parquet,
            csv,
            parquet_pending,
            csv_pending,
            rows: 0,
        })
    }

    /// Adds rows to the master dataset; once enough are gathered they are encoded into both
    /// files. Returns the bytes the files grew by (often none).
    pub fn write(&mut self, rows: DataFrame) -> Result<Produced, MasterError> {
        if rows.height() > 0 {
            match &mut self.gathered {
                Some(gathered) => {
                    gathered.vstack_mut_owned(rows)?;
                }
                None => self.gathered = Some(rows),
            }
        }
        if self
            .gathered
            .as_ref()
            .is_some_and(|gathered| gathered.height() >= ROWS_PER_BATCH)
        {
            self.encode_gathered()?;
        }
        Ok(self.take_produced())
    }

    fn encode_gathered(&mut self) -> Result<(), MasterError> {
        if let Some(mut batch) = self.gathered.take() {
            // The writers want contiguous columns.
            batch.rechunk_mut();
            self.parquet.write_batch(&batch)?;
            self.csv.write_batch(&batch)?;
            self.rows += batch.height() as u64;
        }
        Ok(())
    }

    /// Completes both files (an empty day gives a valid, empty Parquet file and a header-only
    /// CSV); returns their paths, the rows written and the files' last bytes.
    pub fn finish(mut self) -> Result<(MasterPaths, u64, Produced), MasterError> {
        self.encode_gathered()?;
        self.parquet.finish()?;
        self.csv.finish()?;
        let last = self.take_produced();
        Ok((self.paths, self.rows, last))
    }

    fn take_produced(&self) -> Produced {
        Produced {
            parquet: std::mem::take(&mut *lock(&self.parquet_pending)),
            csv: std::mem::take(&mut *lock(&self.csv_pending)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produced_bytes_are_exactly_the_files() {
        let dir = std::env::temp_dir().join(format!("master-tee-{}", std::process::id()));
        let mut writer = MasterWriter::create(&dir).unwrap();
        let mut produced = writer
            .write(DataFrame::empty_with_schema(&schema()))
            .unwrap();
        let (paths, rows, last) = writer.finish().unwrap();
        produced.parquet.extend(last.parquet);
        produced.csv.extend(last.csv);
        assert_eq!(rows, 0);
        assert_eq!(std::fs::read(&paths.parquet).unwrap(), produced.parquet);
        assert_eq!(std::fs::read(&paths.csv).unwrap(), produced.csv);
        assert!(
            produced.csv.starts_with(b"campaign_id,"),
            "CSV starts with its header"
        );
        assert!(produced.parquet.starts_with(b"PAR1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rows_are_gathered_and_encoded_together_and_none_are_lost() {
        use crate::generate::{partition_csv, PartitionSpec};
        use crate::validate::{check_partition, PartitionCheck};
        let dir = std::env::temp_dir().join(format!("master-gather-{}", std::process::id()));
        let mut writer = MasterWriter::create(&dir).unwrap();
        let mut produced = Produced::default();
        for partition in 0..3 {
            let spec = PartitionSpec {
                date: "2026-11-24".parse().unwrap(),
                partition,
                rows: 7,
                seed: 1,
            };
            let PartitionCheck::Parsed { good, .. } =
                check_partition(partition_csv(&spec).into(), spec.date)
            else {
                panic!("generated rows are valid");
            };
            let grew = writer.write(good).unwrap();
            assert!(grew.csv.is_empty(), "21 rows stay gathered until finish");
            produced.parquet.extend(grew.parquet);
        }
        let (paths, rows, last) = writer.finish().unwrap();
        produced.parquet.extend(last.parquet);
        assert_eq!(rows, 21);
        let csv = std::fs::read_to_string(&paths.csv).unwrap();
        assert_eq!(csv.lines().count(), 22, "header + every row");
        assert_eq!(csv.as_bytes(), last.csv);
        assert_eq!(std::fs::read(&paths.parquet).unwrap(), produced.parquet);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
