//! Printing batches, headers and service descriptions.

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema};
use serde_json::{Map, Value as Json};
use vgirpc_wire::ipc::StreamWriter;
use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::pyarrow::{field_text, type_name};
use vgirpc_wire::types::read_ipc_stream;

use crate::args::Format;
use crate::error::CliError;

/// Writes rows in one output format. Text formats print a batch's rows as
/// they arrive, except the table, which needs every row to align columns.
pub(crate) struct Printer<W: Write> {
    out: W,
    format: Format,
    /// Column names of the TSV header line already printed.
    tsv_columns: Option<Vec<String>>,
    table: Vec<Vec<String>>,
    table_columns: Vec<String>,
    /// Arrow output: each message is encoded in memory, then written whole,
    /// so an encoding failure leaves no half-written message behind.
    arrow: Option<StreamWriter<Vec<u8>>>,
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            tsv_columns: None,
            table: Vec::new(),
            table_columns: Vec::new(),
            arrow: None,
        }
    }

    /// The output format.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// A unary result: just the value(s) for a single `result` column in
    /// text formats, so `$(vgi-rpc call ...)` captures the answer itself.
    pub(crate) fn result(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        match self.format {
            Format::Arrow => self.batch(batch),
            Format::Json => {
                if batch.num_columns() == 0 {
                    return self.line("null");
                }
                self.batch(batch)
            }
            Format::Table | Format::Tsv => {
                if batch.num_columns() == 0 {
                    return Ok(());
                }
                if batch.num_columns() == 1 && batch.schema_ref().field(0).name() == "result" {
                    for row in 0..batch.num_rows() {
                        let text = cell_text(batch.column(0).as_ref(), row, self.format);
                        self.line(&text)?;
                    }
                    return Ok(());
                }
                self.batch(batch)
            }
        }
    }

    /// A stream header, printed before the stream's rows.
    pub(crate) fn header(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        match self.format {
            Format::Arrow => {
                let bytes = vgirpc_wire::ipc::write_stream_bytes(
                    batch.schema_ref(),
                    [(batch, &Metadata::new())],
                )
                .map_err(CliError::arrow("cannot encode the stream header"))?;
                self.write(&bytes)
            }
            Format::Json => {
                let mut object = Map::new();
                object.insert("__header__".into(), row_json(batch, 0));
                self.line(&Json::Object(object).to_string())
            }
            Format::Table => {
                self.line("Header:")?;
                for (i, field) in batch.schema_ref().fields().iter().enumerate() {
                    let value = cell_text(batch.column(i).as_ref(), 0, Format::Table);
                    self.line(&format!("  {}: {value}", field.name()))?;
                }
                self.line("")
            }
            Format::Tsv => {
                let names: Vec<String> = batch
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| escape(f.name()))
                    .collect();
                self.line(&names.join("\t"))?;
                let values: Vec<String> = (0..batch.num_columns())
                    .map(|i| cell_text(batch.column(i).as_ref(), 0, Format::Tsv))
                    .collect();
                self.line(&values.join("\t"))?;
                self.line("")
            }
        }
    }

    /// Every row of `batch`.
    pub(crate) fn batch(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        let schema = batch.schema_ref();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        match self.format {
            Format::Arrow => {
                // A batch on a new schema starts a new IPC stream.
                if self.arrow.as_ref().is_some_and(|w| w.schema() != schema) {
                    self.end_arrow()?;
                }
                let writer = match &mut self.arrow {
                    Some(writer) => writer,
                    None => self.arrow.insert(
                        StreamWriter::try_new(Vec::new(), schema)
                            .map_err(CliError::arrow("cannot encode output"))?,
                    ),
                };
                writer
                    .write(batch, &Metadata::new())
                    .map_err(CliError::arrow("cannot encode output"))?;
                let bytes = std::mem::take(writer.get_mut());
                self.write(&bytes)
            }
            Format::Json => {
                for row in 0..batch.num_rows() {
                    self.line(&row_json(batch, row).to_string())?;
                }
                self.out
                    .flush()
                    .map_err(CliError::io("cannot write output"))
            }
            Format::Tsv => {
                if self.tsv_columns.as_ref() != Some(&names) {
                    let header: Vec<String> = names.iter().map(|n| escape(n)).collect();
                    self.line(&header.join("\t"))?;
                    self.tsv_columns = Some(names);
                }
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> = (0..batch.num_columns())
                        .map(|i| cell_text(batch.column(i).as_ref(), row, Format::Tsv))
                        .collect();
                    self.line(&cells.join("\t"))?;
                }
                self.out
                    .flush()
                    .map_err(CliError::io("cannot write output"))
            }
            Format::Table => {
                if self.table_columns != names {
                    self.flush_table()?;
                    self.table_columns = names;
                }
                for row in 0..batch.num_rows() {
                    self.table.push(
                        (0..batch.num_columns())
                            .map(|i| cell_text(batch.column(i).as_ref(), row, Format::Table))
                            .collect(),
                    );
                }
                Ok(())
            }
        }
    }

    /// Prints whatever is buffered (the table, the end of an IPC stream).
    pub(crate) fn finish(&mut self) -> Result<(), CliError> {
        self.flush_table()?;
        self.end_arrow()?;
        self.out
            .flush()
            .map_err(CliError::io("cannot write output"))
    }

    fn end_arrow(&mut self) -> Result<(), CliError> {
        if let Some(writer) = self.arrow.take() {
            let bytes = writer
                .finish()
                .map_err(CliError::arrow("cannot encode output"))?;
            self.write(&bytes)?;
        }
        Ok(())
    }

    fn flush_table(&mut self) -> Result<(), CliError> {
        if self.table_columns.is_empty() {
            return Ok(());
        }
        let columns = std::mem::take(&mut self.table_columns);
        let rows = std::mem::take(&mut self.table);
        if rows.is_empty() {
            return self.line("(empty)");
        }
        let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let pad = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let header = pad(&columns);
        let rule = widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ");
        self.line(&header)?;
        self.line(&rule)?;
        for row in &rows {
            let text = pad(row);
            self.line(&text)?;
        }
        Ok(())
    }

    pub(crate) fn line(&mut self, text: &str) -> Result<(), CliError> {
        writeln!(self.out, "{text}").map_err(CliError::io("cannot write output"))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .map_err(CliError::io("cannot write output"))
    }
}

/// One row as a JSON object.
pub(crate) fn row_json(batch: &RecordBatch, row: usize) -> Json {
    let mut object = Map::new();
    for (i, field) in batch.schema_ref().fields().iter().enumerate() {
        object.insert(
            field.name().clone(),
            cell_json(batch.column(i).as_ref(), row),
        );
    }
    Json::Object(object)
}

/// One cell as JSON: numbers, booleans, strings, arrays and objects where
/// JSON has them; temporal and decimal values as their text; binary as
/// hex, except a nested IPC stream (how structs travel) as its row.
fn cell_json(array: &dyn Array, row: usize) -> Json {
    if array.is_null(row) {
        return Json::Null;
    }
    match array.data_type() {
        DataType::Boolean => Json::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Json::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Json::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Json::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Json::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Json::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => Json::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => Json::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Json::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float16 => float_json(array.as_primitive::<Float16Type>().value(row).to_f64()),
        DataType::Float32 => float_json(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float_json(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Json::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Json::from(array.as_string::<i64>().value(row)),
        DataType::Binary => bytes_json(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => bytes_json(array.as_binary::<i64>().value(row)),
        DataType::FixedSizeBinary(_) => bytes_json(array.as_fixed_size_binary().value(row)),
        DataType::List(_) => list_json(&array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => list_json(&array.as_list::<i64>().value(row)),
        DataType::FixedSizeList(_, _) => list_json(&array.as_fixed_size_list().value(row)),
        DataType::Struct(fields) => {
            let parts = array.as_struct();
            let mut object = Map::new();
            for (i, field) in fields.iter().enumerate() {
                object.insert(
                    field.name().clone(),
                    cell_json(parts.column(i).as_ref(), row),
                );
            }
            Json::Object(object)
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let keys = entries.column(0);
            let values = entries.column(1);
            let all_text_keys =
                (0..entries.len()).all(|i| matches!(cell_json(keys.as_ref(), i), Json::String(_)));
            if all_text_keys {
                let mut object = Map::new();
                for i in 0..entries.len() {
                    if let Json::String(key) = cell_json(keys.as_ref(), i) {
                        object.insert(key, cell_json(values.as_ref(), i));
                    }
                }
                Json::Object(object)
            } else {
                Json::Array(
                    (0..entries.len())
                        .map(|i| {
                            Json::Array(vec![
                                cell_json(keys.as_ref(), i),
                                cell_json(values.as_ref(), i),
                            ])
                        })
                        .collect(),
                )
            }
        }
        _ => Json::String(display(array, row)),
    }
}

fn float_json(v: f64) -> Json {
    serde_json::Number::from_f64(v)
        .map(Json::Number)
        // JSON has no NaN or infinity; their text is the clearest stand-in.
        .unwrap_or_else(|| Json::String(format!("{v}")))
}

fn list_json(items: &dyn Array) -> Json {
    Json::Array((0..items.len()).map(|i| cell_json(items, i)).collect())
}

fn bytes_json(bytes: &[u8]) -> Json {
    if let Some(row) = embedded_row(bytes) {
        return row;
    }
    Json::String(hex(bytes))
}

/// A binary value holding a one-row IPC stream (a struct parameter or
/// result, WIRE_PROTOCOL §4) as that row.
fn embedded_row(bytes: &[u8]) -> Option<Json> {
    if !bytes.starts_with(&[0xFF; 4]) {
        return None;
    }
    let (_, batches) = read_ipc_stream(bytes).ok()?;
    match batches.as_slice() {
        [batch] if batch.num_rows() == 1 => Some(row_json(batch, 0)),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("0x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn display(array: &dyn Array, row: usize) -> String {
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(formatter) => formatter.value(row).to_string(),
        Err(_) => format!("<{}>", type_name(array.data_type())),
    }
}

/// One cell as text for the table and TSV formats: strings bare, nested
/// values as compact JSON.
fn cell_text(array: &dyn Array, row: usize, format: Format) -> String {
    let text = match cell_json(array, row) {
        Json::Null if format == Format::Tsv => String::new(),
        Json::String(s) => s,
        other => other.to_string(),
    };
    escape(&text)
}

/// Tabs and line breaks would split a TSV cell or a table row, so they are
/// escaped (and so is the escape character).
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// A schema on one line: `a: double not null, b: string`.
pub(crate) fn schema_line(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| field_text(f))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::Field;

    fn sample() -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 20])),
            Arc::new(StringArray::from(vec![Some("a\tb"), None])),
            Arc::new(Float64Array::from(vec![1.0, f64::NAN])),
        ];
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("n", DataType::Int64, false),
                Field::new("s", DataType::Utf8, true),
                Field::new("f", DataType::Float64, false),
            ])),
            columns,
        )
        .unwrap()
    }

    fn render(format: Format, f: impl FnOnce(&mut Printer<&mut Vec<u8>>)) -> String {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out, format);
        f(&mut printer);
        printer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tsv_has_one_header_line_and_escaped_cells() {
        let text = render(Format::Tsv, |p| {
            p.batch(&sample()).unwrap();
            p.batch(&sample()).unwrap();
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "n\ts\tf");
        assert_eq!(lines[1], "1\ta\\tb\t1.0");
        assert_eq!(lines[2], "20\t\tNaN");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn table_aligns_columns() {
        let text = render(Format::Table, |p| p.batch(&sample()).unwrap());
        assert_eq!(
            text,
            "n   s     f\n--  ----  ---\n1   a\\tb  1.0\n20  null  NaN\n"
        );
    }

    #[test]
    fn json_lines_per_row() {
        let text = render(Format::Json, |p| p.batch(&sample()).unwrap());
        assert_eq!(
            text,
            "{\"f\":1.0,\"n\":1,\"s\":\"a\\tb\"}\n{\"f\":\"NaN\",\"n\":20,\"s\":null}\n"
        );
    }

    #[test]
    fn a_unary_result_prints_its_value_alone() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "result",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(vec!["hi"]))],
        )
        .unwrap();
        assert_eq!(render(Format::Tsv, |p| p.result(&batch).unwrap()), "hi\n");
        assert_eq!(
            render(Format::Json, |p| p.result(&batch).unwrap()),
            "{\"result\":\"hi\"}\n"
        );
    }
}
