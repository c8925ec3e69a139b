//! A seed's column types, read from its values as dbt does (whole numbers, decimals,
//! booleans, dates, timestamps, else text; decimals exact, or as dbt's `float8` for a dbt
//! project), unless `column_types` names them, for the engines that load rows themselves
//! (PostgreSQL, Redshift, Spark); the names are PostgreSQL's, each engine spells them its way.

use crate::adapter::{CsvSource, DbError, DbResult};

/// The types a column's values may all have, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Type {
    Integer,
    Bigint,
    Numeric,
    Boolean,
    Date,
    Timestamp,
    Text,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Integer => "integer",
            Type::Bigint => "bigint",
            Type::Numeric => "numeric",
            Type::Boolean => "boolean",
            Type::Date => "date",
            Type::Timestamp => "timestamp",
            Type::Text => "text",
        }
    }

    /// The narrowest type that holds `v`.
    fn of(v: &str) -> Type {
        if v.parse::<i32>().is_ok() {
            Type::Integer
        } else if v.parse::<i64>().is_ok() {
            Type::Bigint
        } else if is_decimal(v) {
            Type::Numeric
        } else if ["true", "false"].iter().any(|b| v.eq_ignore_ascii_case(b)) {
            Type::Boolean
        } else if !v.starts_with(|c: char| c.is_ascii_digit()) || v.len() < 10 {
            Type::Text
        } else if v.len() == 10 && v.parse::<jiff::civil::Date>().is_ok() {
            Type::Date
        } else if v.len() > 10 && is_timestamp(v) {
            Type::Timestamp
        } else {
            Type::Text
        }
    }

    /// The type holding values of both: numbers widen among themselves, a date into a
    /// timestamp; anything else mixed is text.
    fn widen(self, other: Type) -> Type {
        let (lo, hi) = (self.min(other), self.max(other));
        let numbers = hi <= Type::Numeric;
        let times = lo >= Type::Date && hi <= Type::Timestamp;
        if lo == hi || numbers || times {
            hi
        } else {
            Type::Text
        }
    }
}

/// `-12.50`, `3`, `.5`: digits with at most one point (no exponent, no thousands separators).
fn is_decimal(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !(int.is_empty() && frac.is_empty()) && all_digits(int) && all_digits(frac)
}

/// `2024-01-31 10:00`, with seconds and fractions or not, `T` or a space between: read by
/// jiff's ISO 8601 parser once the shape is right (5× faster than trying formats, measured
/// on a 1M-row seed).
fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    let shaped = b.len() >= 16 && matches!(b[10], b' ' | b'T') && b[13] == b':';
    shaped && v.parse::<jiff::civil::DateTime>().is_ok()
}

/// Each column's name and type: `column_types`' where given, else the narrowest type all of
/// its values have (text when it has none).
pub(crate) fn columns(data: &[u8], csv: &CsvSource) -> DbResult<Vec<(String, String)>> {
    let mut reader = reader(data, csv)?;
    let names: Vec<String> = match csv.header {
        true => reader
            .headers()
            .map_err(bad)?
            .iter()
            .map(str::to_string)
            .collect(),
        false => Vec::new(),
    };
    let types = match in_lines(data, csv)? {
        Some(body) => infer_in_parallel(body, csv, names.len()),
        None => None,
    };
    let types = match types {
        Some(types) => types,
        None => infer(&mut reader, names.len())?,
    };
    Ok(types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("column{i}"));
            // Unquoted, PostgreSQL folds a name to lower case.
            let name = if csv.quote_columns {
                name
            } else {
                name.to_lowercase()
            };
            let given = csv
                .column_types
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(&name));
            let inferred = match t.unwrap_or(Type::Text) {
                Type::Numeric if csv.dbt_types => "double precision",
                t => t.name(),
            };
            let ty = given.map_or_else(|| inferred.to_string(), |(_, t)| t.clone());
            (name, ty)
        })
        .collect())
}

/// The narrowest type of each column's values (None: it has none), reading what `reader` has
/// left; at least `width` columns.
fn infer(reader: &mut csv::Reader<&[u8]>, width: usize) -> DbResult<Vec<Option<Type>>> {
    let mut types: Vec<Option<Type>> = vec![None; width];
    // One record read into again and again: no allocation per row.
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(bad)? {
        widen_by(&mut types, &record);
    }
    Ok(types)
}

fn widen_by(types: &mut Vec<Option<Type>>, record: &csv::StringRecord) {
    types.resize(types.len().max(record.len()), None);
    for (slot, v) in types.iter_mut().zip(record.iter()) {
        // Text holds anything: a column found to be text needs no more reading.
        if !v.is_empty() && *slot != Some(Type::Text) {
            let t = Type::of(v);
            *slot = Some(slot.map_or(t, |have| have.widen(t)));
        }
    }
}

/// The rows of a large file in which every line is a record (no quote character anywhere),
/// after the header; None otherwise.
fn in_lines<'d>(data: &'d [u8], csv: &CsvSource) -> DbResult<Option<&'d [u8]>> {
    let quote = single_byte(&csv.quote, "quote")?;
    if data.len() < PARALLEL_BYTES || data.contains(&quote) {
        return Ok(None);
    }
    Ok(match csv.header {
        true => data
            .iter()
            .position(|&b| b == b'\n')
            .map(|end| &data[end + 1..]),
        false => Some(data),
    })
}

/// Below this size a file's types are read in one piece.
const PARALLEL_BYTES: usize = 1 << 20;

/// `infer` over pieces of `body` (whole lines) on every core: a 1M-row seed's types in half
/// the time on two. None when a piece cannot be read or the pieces' widths differ: read in
/// one piece, the file then fails at its line.
fn infer_in_parallel(body: &[u8], csv: &CsvSource, width: usize) -> Option<Vec<Option<Type>>> {
    use rayon::prelude::*;
    let mut pieces = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let cut = match rest.len() > PARALLEL_BYTES {
            true => rest[PARALLEL_BYTES..].iter().position(|&b| b == b'\n'),
            false => None,
        };
        let (piece, after) = rest.split_at(cut.map_or(rest.len(), |c| PARALLEL_BYTES + c + 1));
        pieces.push(piece);
        rest = after;
    }
    let read: Vec<(Vec<Option<Type>>, Option<usize>)> = pieces
        .into_par_iter()
        .map(|piece| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(single_byte(&csv.delimiter, "delimiter").ok()?)
                .from_reader(piece);
            let mut types = vec![None; width];
            let mut record = csv::StringRecord::new();
            let mut len = None;
            while reader.read_record(&mut record).ok()? {
                if *len.get_or_insert(record.len()) != record.len() {
                    return None;
                }
                widen_by(&mut types, &record);
            }
            Some((types, len))
        })
        .collect::<Option<_>>()?;
    let mut lens = read.iter().filter_map(|(_, len)| *len);
    let first = lens.next();
    let header_agrees = !csv.header || first.is_none_or(|l| l == width);
    if !header_agrees || lens.any(|l| Some(l) != first) {
        return None;
    }
    let mut types: Vec<Option<Type>> = vec![None; first.unwrap_or(width).max(width)];
    for (piece, _) in read {
        for (slot, t) in types.iter_mut().zip(piece) {
            *slot = match (*slot, t) {
                (Some(a), Some(b)) => Some(a.widen(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Some(types)
}

fn reader<'d>(data: &'d [u8], csv: &CsvSource) -> DbResult<csv::Reader<&'d [u8]>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(csv.header)
        .delimiter(single_byte(&csv.delimiter, "delimiter")?)
        .quote(single_byte(&csv.quote, "quote")?)
        .from_reader(data))
}

/// A row the file could not be read at.
fn bad(e: csv::Error) -> DbError {
    let line = e.position().map_or(0, |p| p.line());
    DbError::BadRow {
        line,
        column: None,
        message: e.to_string(),
    }
}

/// A row of a seed and its line in the file.
pub(crate) struct Record {
    pub(crate) line: u64,
    pub(crate) values: Vec<String>,
}

/// Every row of the file, each `width` values long (a short row ends with empty ones).
pub(crate) fn records(data: &[u8], csv: &CsvSource, width: usize) -> DbResult<Vec<Record>> {
    let mut out = Vec::new();
    for record in reader(data, csv)?.records() {
        let record = record.map_err(bad)?;
        let mut values: Vec<String> = record.iter().map(str::to_string).collect();
        values.resize(width.max(values.len()), String::new());
        out.push(Record {
            line: record.position().map_or(0, |p| p.line()),
            values,
        });
    }
    Ok(out)
}

/// Sizes for Redshift, whose `text` is `VARCHAR(256)` bytes and whose `numeric` is
/// `NUMERIC(18, 0)`: text as wide as its longest value's bytes, numbers as wide as theirs.
pub(crate) fn sized(columns: Vec<(String, String)>, records: &[Record]) -> Vec<(String, String)> {
    let values = |i: usize| records.iter().filter_map(move |r| r.values.get(i));
    columns
        .into_iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let ty = match ty.as_str() {
                "text" => {
                    let widest = values(i).map(String::len).max().unwrap_or(0);
                    format!("varchar({})", widest.clamp(1, 65535))
                }
                "numeric" => {
                    let digits = |v: &String| {
                        let v = v.trim_start_matches(['-', '+']);
                        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
                        (int.trim_start_matches('0').len(), frac.len())
                    };
                    let (int, scale) = values(i)
                        .filter(|v| !v.is_empty())
                        .map(digits)
                        .fold((1, 0), |(a, b), (c, d)| (a.max(c), b.max(d)));
                    let scale = scale.min(37);
                    format!("numeric({}, {scale})", (int + scale).min(38))
                }
                _ => ty,
            };
            (name, ty)
        })
        .collect()
}

fn single_byte(s: &str, what: &str) -> DbResult<u8> {
    match s.as_bytes() {
        [b] => Ok(*b),
        _ => Err(DbError::Failed(format!(
            "the seed's {what} must be one ASCII character, found {s:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comma-separated file with a header, types read from its values.
    fn plain() -> CsvSource {
        CsvSource {
            path: "x.csv".into(),
            decoded: None,
            delimiter: ",".into(),
            quote: "\"".into(),
            header: true,
            quote_columns: true,
            column_types: Vec::new(),
            dbt_types: false,
        }
    }

    fn typed(rows: &str) -> Vec<(String, String)> {
        typed_as(rows, false)
    }

    fn typed_as(rows: &str, dbt_types: bool) -> Vec<(String, String)> {
        let csv = CsvSource {
            column_types: vec![("fixed".into(), "varchar(3)".into())],
            dbt_types,
            ..plain()
        };
        columns(rows.as_bytes(), &csv).unwrap()
    }

    #[test]
    fn a_dbt_projects_decimals_are_float8_as_dbt_types_them() {
        let cols = typed_as("id,tax_rate\n1,0.06\n2,0.08\n", true);
        assert_eq!(cols[0].1, "integer");
        assert_eq!(cols[1].1, "double precision");
    }

    #[test]
    fn each_column_gets_the_narrowest_type_of_its_values() {
        let cols = typed(
            "id,big,amount,flag,day,at,name,mixed,empty,fixed\n\
             1,3000000000,12.5,true,2024-01-31,2024-01-31 10:00:00,김치,1,,7\n\
             2,4,-3,FALSE,2024-02-01,2024-02-01T11:30:00,라면,x,,8\n",
        );
        let types: Vec<&str> = cols.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "integer",
                "bigint",
                "numeric",
                "boolean",
                "date",
                "timestamp",
                "text",
                "text",
                "text",
                "varchar(3)"
            ]
        );
    }

    /// A file of several megabytes is read in pieces: the types are those of the whole, a
    /// value far down still widens its column, and a bad row still fails at its line.
    #[test]
    fn a_large_seed_is_typed_as_a_whole_and_fails_at_its_line() {
        let mut rows = String::from("id,amount,day\n");
        for i in 0..200_000 {
            rows.push_str(&format!("{i},{i}.5,2024-01-01\n"));
        }
        rows.push_str("3000000000,7,2024-01-02 10:00:00\n");
        let types: Vec<String> = typed(&rows).into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["bigint", "numeric", "timestamp"]);
        rows.push_str("1,2\n");
        match columns(rows.as_bytes(), &plain()) {
            Err(DbError::BadRow { line, .. }) => assert_eq!(line, 200_003),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redshift_sizes_text_in_bytes_and_numbers_to_their_digits() {
        let csv = "name,amount,id\n김치찌개,-12.505,1\nab,3000.5,2\n,,3\n";
        let source = plain();
        let cols = columns(csv.as_bytes(), &source).unwrap();
        let rows = records(csv.as_bytes(), &source, 3).unwrap();
        assert_eq!(rows[0].line, 2);
        let types: Vec<String> = sized(cols, &rows).into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, ["varchar(12)", "numeric(7, 3)", "integer"]);
    }

    #[test]
    fn dates_widen_into_timestamps_and_numbers_into_numeric() {
        let cols = typed("a,b\n2024-01-01,1\n2024-01-01 00:00:01,1.5\n");
        assert_eq!(cols[0].1, "timestamp");
        assert_eq!(cols[1].1, "numeric");
    }
}
