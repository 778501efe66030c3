//! Writing the master dataset: Parquet and CSV side by side in a local directory, a batch of
//! good rows at a time, so memory holds one batch whatever the day's size. The CSV's lines
//! come formatted (the raw partitions' own, see `validate`); only Parquet is encoded here.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use polars::prelude::*;

use crate::dataset::{header, schema, MASTER_NAME};

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

/// Names the file an I/O error happened on.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MasterError + '_ {
    move |source| MasterError::Io {
        path: path.to_path_buf(),
        source,
    }
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

/// Bytes the Parquet writer produced since they were last taken.
type Pending = Arc<Mutex<Vec<u8>>>;

/// The local Parquet file that also keeps what was written to it, so the same bytes can be
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
    /// In order; each chunk is one partition's lines (or the header), shared, not copied.
    pub csv: Vec<Bytes>,
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
    parquet_pending: Pending,
    /// The CSV is written as it comes: its lines arrive already formatted.
    csv: File,
    csv_pending: Vec<Bytes>,
    rows: u64,
}

impl MasterWriter {
    /// Creates (or truncates) both files under `dir`.
    pub fn create(dir: &Path) -> Result<Self, MasterError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let paths = MasterPaths::under(dir);
        let create = |path: &Path| File::create(path).map_err(io_error(path));
        let parquet_pending = Pending::default();
        let parquet_file = TeeFile {
            file: create(&paths.parquet)?,
            pending: Arc::clone(&parquet_pending),
        };
        let parquet = ParquetWriter::new(parquet_file)
            .with_compression(ParquetCompression::Zstd(
                polars::polars_utils::compression::ZstdLevel::try_new(1).ok(),
            ))
            .batched(&schema())?;
        let mut writer = Self {
            csv: create(&paths.csv)?,
            paths,
            gathered: None,
            parquet,
            parquet_pending,
            csv_pending: Vec::new(),
            rows: 0,
        };
        writer.append_csv(Bytes::from(format!("{}\n", header())))?;
        Ok(writer)
    }

    /// Adds rows to the master dataset: `csv_lines` (the same rows as header-less CSV lines)
    /// go to the CSV at once; the rows are encoded into Parquet once enough are gathered.
    /// Returns the bytes the files grew by.
    pub fn write(&mut self, rows: DataFrame, csv_lines: Bytes) -> Result<Produced, MasterError> {
        if rows.height() > 0 {
            match &mut self.gathered {
                Some(gathered) => {
                    gathered.vstack_mut_owned(rows)?;
                }
                None => self.gathered = Some(rows),
            }
        }
        self.append_csv(csv_lines)?;
        if self
            .gathered
            .as_ref()
            .is_some_and(|gathered| gathered.height() >= ROWS_PER_BATCH)
        {
            self.encode_gathered()?;
        }
        Ok(self.take_produced())
    }

    fn append_csv(&mut self, lines: Bytes) -> Result<(), MasterError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.csv
            .write_all(&lines)
            .map_err(io_error(&self.paths.csv))?;
        self.csv_pending.push(lines);
        Ok(())
    }

    fn encode_gathered(&mut self) -> Result<(), MasterError> {
        if let Some(mut batch) = self.gathered.take() {
            // The writer wants contiguous columns.
            batch.rechunk_mut();
            self.parquet.write_batch(&batch)?;
            self.rows += batch.height() as u64;
        }
        Ok(())
    }

    /// Completes both files (an empty day gives a valid, empty Parquet file and a header-only
    /// CSV); returns their paths, the rows written and the files' last bytes.
    pub fn finish(mut self) -> Result<(MasterPaths, u64, Produced), MasterError> {
        self.encode_gathered()?;
        self.parquet.finish()?;
        self.csv.flush().map_err(io_error(&self.paths.csv))?;
        let last = self.take_produced();
        Ok((self.paths, self.rows, last))
    }

    fn take_produced(&mut self) -> Produced {
        Produced {
            parquet: std::mem::take(&mut *lock(&self.parquet_pending)),
            csv: std::mem::take(&mut self.csv_pending),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.concat()
    }

    #[test]
    fn produced_bytes_are_exactly_the_files() {
        let dir = std::env::temp_dir().join(format!("master-tee-{}", std::process::id()));
        let mut writer = MasterWriter::create(&dir).unwrap();
        let mut produced = writer
            .write(DataFrame::empty_with_schema(&schema()), Bytes::new())
            .unwrap();
        let (paths, rows, last) = writer.finish().unwrap();
        produced.parquet.extend(last.parquet);
        produced.csv.extend(last.csv);
        assert_eq!(rows, 0);
        assert_eq!(std::fs::read(&paths.parquet).unwrap(), produced.parquet);
        assert_eq!(std::fs::read(&paths.csv).unwrap(), joined(&produced.csv));
        assert_eq!(
            joined(&produced.csv),
            format!("{}\n", header()).into_bytes(),
            "an empty CSV is its header"
        );
        assert!(produced.parquet.starts_with(b"PAR1"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rows_are_gathered_for_parquet_while_their_lines_go_straight_to_the_csv() {
        use crate::generate::{partition_csv, PartitionSpec};
        use crate::validate::{check_partition, PartitionCheck};
        let dir = std::env::temp_dir().join(format!("master-gather-{}", std::process::id()));
        let mut writer = MasterWriter::create(&dir).unwrap();
        let mut produced = Produced::default();
        let mut raw_lines = Vec::new();
        for partition in 0..3 {
            let spec = PartitionSpec {
                date: "2026-11-24".parse().unwrap(),
                partition,
                rows: 7,
                seed: 1,
            };
            let raw = partition_csv(&spec);
            raw_lines.extend(raw.lines().skip(1).map(str::to_string));
            let PartitionCheck::Parsed { good, good_csv, .. } =
                check_partition(raw.into(), spec.date)
            else {
                panic!("generated rows are valid");
            };
            let grew = writer.write(good, good_csv).unwrap();
            assert!(
                grew.csv.iter().any(|chunk| !chunk.is_empty()),
                "each partition's lines are handed on at once"
            );
            produced.parquet.extend(grew.parquet);
            produced.csv.extend(grew.csv);
        }
        let (paths, rows, last) = writer.finish().unwrap();
        produced.parquet.extend(last.parquet);
        produced.csv.extend(last.csv);
        assert_eq!(rows, 21, "21 rows gathered, encoded at finish");
        let csv = std::fs::read_to_string(&paths.csv).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(header().as_str()));
        assert_eq!(
            lines.map(str::to_string).collect::<Vec<_>>(),
            raw_lines,
            "every raw line, verbatim, in order"
        );
        assert_eq!(csv.as_bytes(), joined(&produced.csv));
        assert_eq!(std::fs::read(&paths.parquet).unwrap(), produced.parquet);
        let parquet = ParquetReader::new(std::io::Cursor::new(produced.parquet))
            .finish()
            .unwrap();
        assert_eq!(parquet.height(), 21);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
