//! `arrowfeed cat`: rows as a table, CSV or JSON lines.

use std::io::{BufWriter, Write};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};

use crate::{CatFormat, CliResult, Failure};

/// Widest cell printed in table format; longer values are cut with an ellipsis.
const MAX_CELL: usize = 48;

pub(crate) fn run(
    path: &Path,
    limit: Option<u64>,
    offset: u64,
    columns: Option<Vec<String>>,
    format: CatFormat,
) -> CliResult {
    // Files, stores and Hugging Face directories alike, in row order.
    let source = crate::input::sequential(&[path.to_path_buf()], columns)?;
    let schema = source.schema();
    let stdout = std::io::stdout().lock();
    let out = BufWriter::new(stdout);
    let io_err = |e: std::io::Error| Failure::Run(format!("<stdout>: {e}"));
    let mut sink: Box<dyn Sink> = match format {
        CatFormat::Table => Box::new(Table::new(out, &schema)),
        CatFormat::Csv => Box::new(Csv(Some(
            arrow_csv::WriterBuilder::new().with_header(true).build(out),
        ))),
        CatFormat::Jsonl => Box::new(arrow_json::LineDelimitedWriter::new(out)),
    };
    let mut skip = offset;
    let mut left = limit.unwrap_or(u64::MAX);
    for batch in source {
        if left == 0 {
            break;
        }
        let batch = batch.map_err(|e| Failure::at(path, arrowfeed::Error::from_arrow(e)))?;
        let n = batch.num_rows() as u64;
        if skip >= n {
            skip -= n;
            continue;
        }
        let take = (n - skip).min(left);
        let part = batch.slice(skip as usize, take as usize);
        skip = 0;
        left -= take;
        sink.write(&part).map_err(|e| match e {
            SinkError::Io(e) => io_err(e),
            SinkError::Arrow(e) => Failure::at(path, e),
        })?;
    }
    sink.finish().map_err(|e| match e {
        SinkError::Io(e) => io_err(e),
        SinkError::Arrow(e) => Failure::at(path, e),
    })
}

enum SinkError {
    Io(std::io::Error),
    Arrow(arrow_schema::ArrowError),
}

impl From<arrow_schema::ArrowError> for SinkError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        match e {
            arrow_schema::ArrowError::IoError(_, io) => Self::Io(io),
            other => Self::Arrow(other),
        }
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

trait Sink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError>;
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// CSV through arrow-csv; the writer is taken out to flush what it buffered.
struct Csv<W: Write>(Option<arrow_csv::Writer<W>>);

impl<W: Write> Sink for Csv<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        match &mut self.0 {
            Some(w) => Ok(w.write(batch)?),
            None => Ok(()),
        }
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        match self.0.take() {
            Some(w) => Ok(w.into_inner().flush()?),
            None => Ok(()),
        }
    }
}

impl<W: Write> Sink for arrow_json::LineDelimitedWriter<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        Ok(arrow_json::LineDelimitedWriter::write(self, batch)?)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        arrow_json::LineDelimitedWriter::finish(self)?;
        Ok(self.get_mut().flush()?)
    }
}

/// A plain-text table; each batch is laid out on its own, under one header.
struct Table<W: Write> {
    out: W,
    names: Vec<String>,
    wrote_header: bool,
}

impl<W: Write> Table<W> {
    fn new(out: W, schema: &arrow_schema::SchemaRef) -> Self {
        Self {
            out,
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            wrote_header: false,
        }
    }
}

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_CELL {
        return s.replace(['\n', '\t'], " ");
    }
    let mut c: String = s.chars().take(MAX_CELL - 1).collect();
    c.push('…');
    c.replace(['\n', '\t'], " ")
}

impl<W: Write> Sink for Table<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let opts = FormatOptions::default().with_null("null");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            cells.push(
                formatters
                    .iter()
                    .map(|f| clip(f.value(r).to_string()))
                    .collect(),
            );
        }
        let mut widths: Vec<usize> = self.names.iter().map(|n| n.chars().count()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String], widths: &[usize]| {
            let mut s = String::new();
            for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                if i > 0 {
                    s.push_str(" | ");
                }
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        if !self.wrote_header {
            self.out.write_all(line(&self.names, &widths).as_bytes())?;
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            self.out
                .write_all(line(&rule, &widths).replace(" | ", "-+-").as_bytes())?;
            self.wrote_header = true;
        }
        for row in &cells {
            self.out.write_all(line(row, &widths).as_bytes())?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if !self.wrote_header {
            let widths: Vec<usize> = self.names.iter().map(|n| n.chars().count()).collect();
            let header = self.names.join(" | ");
            writeln!(self.out, "{header}")?;
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            writeln!(self.out, "{}", rule.join("-+-"))?;
        }
        Ok(self.out.flush()?)
    }
}
