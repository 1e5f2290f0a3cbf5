//! Rows printed as an aligned table, JSON (an array of objects) or CSV (header first).
//!
//! Each cell keeps its kind, so no format guesses: identifiers (accounts, task ids, names) are
//! strings everywhere, even when they look like numbers; counts are JSON numbers; ages and
//! times to fix read `4 d` or `5 h` in a table and are numbers of seconds in JSON and CSV (the column
//! named with its unit, `age_seconds`); lists are joined by spaces in a table and CSV and are
//! arrays in JSON; times are `YYYY-MM-DD HH:MM` in a table and RFC 3339 in JSON and CSV.

use audit_shared::lifecycle::fmt_age;
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

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A string in every format (identifiers, names, states).
    Text(String),
    /// A count.
    Count(u64),
    /// A duration in milliseconds; `None` when there is none (no finding was fixed).
    Age(Option<i64>),
    /// A time (epoch milliseconds); `None` when there is none.
    Time(Option<i64>),
    /// Several strings.
    List(Vec<String>),
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// `yes` when `b`, else empty.
    pub fn yes(b: bool) -> Cell {
        Cell::Text(if b { "yes".into() } else { String::new() })
    }

    fn human(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Age(a) => a.map_or_else(|| "-".into(), fmt_age),
            Cell::Time(t) => t.map(minute).unwrap_or_default(),
            Cell::List(l) => l.join(" "),
        }
    }

    fn machine_text(&self) -> String {
        match self {
            Cell::Age(a) => a.map(|ms| (ms / 1000).to_string()).unwrap_or_default(),
            Cell::Time(t) => t.map(rfc3339).unwrap_or_default(),
            other => other.human(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::from(s.as_str()),
            Cell::Count(n) => Value::from(*n),
            Cell::Age(a) => a.map_or(Value::Null, |ms| Value::from(ms / 1000)),
            Cell::Time(t) => t.map_or(Value::Null, |t| Value::from(rfc3339(t))),
            Cell::List(l) => Value::from(l.clone()),
        }
    }
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The I/O error under a CSV one (a closed pipe stays one), or the CSV error as I/O.
fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// A column: its name, and the kind its cells hold (for the unit in machine formats' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// As a table and the header show it.
    pub name: &'static str,
    /// Its cells are ages (named `<name>_seconds` in JSON and CSV).
    pub age: bool,
}

impl Column {
    /// A column of anything but ages.
    pub const fn plain(name: &'static str) -> Column {
        Column { name, age: false }
    }

    /// A column of ages.
    pub const fn age(name: &'static str) -> Column {
        Column { name, age: true }
    }

    fn machine_name(&self) -> String {
        if self.age {
            format!("{}_seconds", self.name)
        } else {
            self.name.to_owned()
        }
    }
}

/// Rows with named columns, in column order.
#[derive(Debug, Default)]
pub struct Rows {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// No rows yet, these columns.
    pub fn new(columns: &[Column]) -> Self {
        Rows { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// No rows yet, these columns (none of them ages).
    pub fn plain(columns: &[&'static str]) -> Self {
        Rows::new(&columns.iter().map(|c| Column::plain(c)).collect::<Vec<_>>())
    }

    /// Adds a row (one value per column).
    pub fn push(&mut self, row: Vec<Cell>) {
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
                        let m: Map<String, Value> =
                            self.columns.iter().zip(r).map(|(c, v)| (c.machine_name(), v.json())).collect();
                        Value::Object(m)
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &array)?;
                writeln!(out)
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(self.columns.iter().map(Column::machine_name)).map_err(csv_io)?;
                for r in &self.rows {
                    w.write_record(r.iter().map(Cell::machine_text)).map_err(csv_io)?;
                }
                w.flush()
            }
            Format::Table => {
                let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(Cell::human).collect()).collect();
                let widths: Vec<usize> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.name.len()]).max().unwrap_or(0))
                    .collect();
                let line = |cells: Vec<&str>| -> String {
                    let padded: Vec<String> =
                        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
                    padded.join("  ").trim_end().to_owned()
                };
                writeln!(out, "{}", line(self.columns.iter().map(|c| c.name).collect()))?;
                for r in &cells {
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

    fn text(rows: &Rows, f: Format) -> String {
        let mut out = Vec::new();
        rows.write(f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_format_keeps_every_value() {
        let mut r = Rows::plain(&["check", "count"]);
        r.push(vec![Cell::text("A, with comma"), Cell::Count(3)]);
        assert_eq!(text(&r, Format::Csv), "check,count\n\"A, with comma\",3\n");
        let json: Value = serde_json::from_str(&text(&r, Format::Json)).unwrap();
        assert_eq!(json, serde_json::json!([{"check": "A, with comma", "count": 3}]));
        assert_eq!(text(&r, Format::Table), "check          count\nA, with comma  3\n(1 row)\n");
    }

    #[test]
    fn identifiers_stay_strings_and_ages_carry_their_unit() {
        let mut r =
            Rows::new(&[Column::plain("account"), Column::plain("task"), Column::age("age"), Column::plain("streams")]);
        r.push(vec![
            Cell::text("012345678901"),
            Cell::text("000000000042"),
            Cell::Age(Some(90_061_000)),
            Cell::List(vec!["a".into(), "b".into()]),
        ]);
        r.push(vec![Cell::text("1e3"), Cell::text("-7"), Cell::Age(None), Cell::List(vec![])]);
        let json: Value = serde_json::from_str(&text(&r, Format::Json)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"account": "012345678901", "task": "000000000042", "age_seconds": 90061, "streams": ["a", "b"]},
                {"account": "1e3", "task": "-7", "age_seconds": null, "streams": []}
            ])
        );
        assert_eq!(
            text(&r, Format::Csv),
            "account,task,age_seconds,streams\n012345678901,000000000042,90061,a b\n1e3,-7,,\n"
        );
        let table = text(&r, Format::Table);
        assert!(table.contains("012345678901  000000000042  1 d") && table.contains("a b"), "{table}");
    }
}
