//! Rows printed as an aligned table, JSON (an array of objects) or CSV (header first).

use clap::ValueEnum;
use serde_json::{Map, Value};
use std::io::Write;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Rows with named columns, in column order.
#[derive(Debug, Default)]
pub struct Rows {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Rows {
    /// No rows yet, these columns.
    pub fn new(columns: &[&'static str]) -> Self {
        Rows { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row (one value per column).
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Writes the rows in `format`.
    pub fn write(&self, format: Format, out: &mut impl Write) -> std::io::Result<()> {
        match format {
            Format::Json => {
                let array: Vec<Value> = self
                    .rows
                    .iter()
                    .map(|r| {
                        let m: Map<String, Value> = self
                            .columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| {
                                let value =
                                    v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(v.as_str()));
                                (c.to_string(), value)
                            })
                            .collect();
                        Value::Object(m)
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &array)?;
                writeln!(out)
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&self.columns)?;
                for r in &self.rows {
                    w.write_record(r)?;
                }
                w.flush()
            }
            Format::Table => {
                let widths: Vec<usize> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.rows.iter().map(|r| r[i].chars().count()).chain([c.len()]).max().unwrap_or(0))
                    .collect();
                let line = |cells: Vec<&str>| -> String {
                    let padded: Vec<String> =
                        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
                    padded.join("  ").trim_end().to_owned()
                };
                writeln!(out, "{}", line(self.columns.clone()))?;
                for r in &self.rows {
                    writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
                }
                writeln!(out, "({} row{})", self.rows.len(), if self.rows.len() == 1 { "" } else { "s" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        let mut r = Rows::new(&["check", "count"]);
        r.push(vec!["A, with comma".into(), "3".into()]);
        r
    }

    #[test]
    fn each_format_keeps_every_value() {
        let text = |f| {
            let mut out = Vec::new();
            rows().write(f, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(Format::Csv), "check,count\n\"A, with comma\",3\n");
        let json: Value = serde_json::from_str(&text(Format::Json)).unwrap();
        assert_eq!(json, serde_json::json!([{"check": "A, with comma", "count": 3}]));
        assert_eq!(text(Format::Table), "check          count\nA, with comma  3\n(1 row)\n");
    }
}
