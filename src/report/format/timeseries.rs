//! `timeseries.csv`: one row a second of a run. Its columns are declared once here, with how a
//! tick fills each and how a reader takes it back, so the run's writer, `report merge` and the
//! charts of `report.html` share one row type and one rule for a bad cell (an error naming the
//! row and column, never a value dropped). Pure: bytes in, bytes out.

use std::collections::BTreeMap;

use crate::results::Tick;

/// One row: one interval of the run, as its tick reported it. Row k counts the events whose
/// instant fell in `[start + k s, start + (k + 1) s)`, where start is the plan's start instant
/// (`--start-at`, the same in every shard); the running totals are through that interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Where the interval ends, in seconds since the plan's start instant: k + 1 (the last row
    /// of a run ends where the run did).
    pub elapsed_s: f64,
    pub started: u64,
    pub assigned: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub late_starts: u64,
    pub assigned_in_second: u64,
    pub failed_in_second: u64,
    pub assigned_p50_us: u64,
    pub assigned_p99_us: u64,
    /// 429 replies so far, and in this interval (as they arrived).
    pub throttled: u64,
    pub throttled_in_second: u64,
    /// Failed devices so far, by kind.
    pub failures: BTreeMap<String, u64>,
}

/// A column: its name, how a row writes it and how a reader sets it.
struct Column {
    name: &'static str,
    write: fn(&Row) -> String,
    read: fn(&mut Row, &str) -> Result<(), ()>,
    /// Added after the first format: a file of an older dpsbench lacks it (read as 0).
    since_later: bool,
}

macro_rules! count {
    ($name:literal, $field:ident) => {
        count!($name, $field, false)
    };
    ($name:literal, $field:ident, $later:expr) => {
        Column {
            name: $name,
            write: |r| r.$field.to_string(),
            read: |r, text| text.parse().map(|n| r.$field = n).map_err(|_| ()),
            since_later: $later,
        }
    };
}

/// The columns, in file order.
const COLUMNS: &[Column] = &[
    Column {
        name: "elapsed_s",
        write: |r| format!("{:.3}", r.elapsed_s),
        read: |r, text| text.parse().map(|s| r.elapsed_s = s).map_err(|_| ()),
        since_later: false,
    },
    count!("started", started),
    count!("assigned", assigned),
    count!("failed", failed),
    count!("in_flight", in_flight),
    count!("late_starts", late_starts),
    count!("assigned_in_second", assigned_in_second),
    count!("failed_in_second", failed_in_second),
    count!("assigned_p50_us", assigned_p50_us, true),
    count!("assigned_p99_us", assigned_p99_us, true),
    count!("throttled", throttled, true),
    count!("throttled_in_second", throttled_in_second, true),
    Column {
        name: "failures",
        write: |r| r.failures.iter().map(|(kind, n)| format!("{kind}={n}")).collect::<Vec<_>>().join(" "),
        read: |r, text| {
            for pair in text.split_whitespace() {
                let (kind, n) = pair.rsplit_once('=').ok_or(())?;
                r.failures.insert(kind.to_string(), n.parse().map_err(|_| ())?);
            }
            Ok(())
        },
        since_later: false,
    },
];

impl Row {
    /// The interval a row of this format closes: k for an `elapsed_s` in (k, k + 1], to the
    /// millisecond the file holds.
    pub fn index(&self) -> u64 {
        let millis = (self.elapsed_s.max(0.0) * 1000.0).round() as u64;
        millis.div_ceil(1000).saturating_sub(1)
    }

    /// The row a tick reports.
    pub fn of(tick: &Tick) -> Self {
        let p = &tick.progress;
        Row {
            elapsed_s: p.elapsed.as_secs_f64(),
            started: p.started,
            assigned: p.assigned,
            failed: p.failed,
            in_flight: p.in_flight,
            late_starts: p.late_starts,
            assigned_in_second: p.interval.assigned,
            failed_in_second: p.interval.failed,
            assigned_p50_us: p.interval.assigned_p50_us,
            assigned_p99_us: p.interval.assigned_p99_us,
            throttled: p.throttled,
            throttled_in_second: p.interval.throttled,
            failures: tick.failures.clone(),
        }
    }

    /// The row as a CSV line.
    pub fn line(&self) -> Vec<u8> {
        super::csv::line(COLUMNS.iter().map(|c| (c.write)(self)))
    }
}

/// The header line.
pub fn header() -> Vec<u8> {
    super::csv::line(COLUMNS.iter().map(|c| c.name.to_string()))
}

/// Reads a `timeseries.csv` by its header's column names. A column of the first format that is
/// missing, or a cell that does not parse, is an error naming it.
pub fn read(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut placed = Vec::new();
    for column in COLUMNS {
        match header.iter().position(|h| h == column.name) {
            Some(at) => placed.push((at, column)),
            None if column.since_later => {}
            None => return Err(format!("no column {}", column.name)),
        }
    }
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let mut row = Row::default();
        for (at, column) in &placed {
            let cell = record.get(*at).unwrap_or("");
            (column.read)(&mut row, cell)
                .map_err(|()| format!("row {}: {} {cell:?} does not parse", line + 1, column.name))?;
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_written_reads_back_and_a_bad_cell_is_an_error_naming_it() {
        let row = Row {
            elapsed_s: 3.25,
            started: 120,
            assigned: 100,
            failed: 3,
            in_flight: 17,
            late_starts: 2,
            assigned_in_second: 40,
            failed_in_second: 1,
            assigned_p50_us: 12_000,
            assigned_p99_us: 48_000,
            throttled: 9,
            throttled_in_second: 4,
            failures: BTreeMap::from([("timeout".to_string(), 2), ("tls".to_string(), 1)]),
        };
        let mut text = header();
        text.extend(row.line());
        let text = String::from_utf8(text).unwrap();
        assert_eq!(read(&text), Ok(vec![row]));
        let bad = text.replace("timeout=2", "timeout=two");
        assert_eq!(read(&bad), Err("row 1: failures \"timeout=two tls=1\" does not parse".into()));
        let bad = text.replace(",17,", ",-17,");
        assert!(read(&bad).unwrap_err().contains("in_flight"), "{bad}");
        // An older file without the later columns reads, with zeros; one without `started` does not.
        let older = "elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,failures\n\
                     1.000,5,4,0,1,0,4,0,\n";
        assert_eq!(read(older).unwrap()[0].throttled, 0);
        assert_eq!(read("elapsed_s\n1.0\n"), Err("no column started".into()));
    }

    #[test]
    fn timeseries_lines_are_csv_one_column_per_figure() {
        use crate::metrics::IntervalStats;
        use crate::results::Progress;
        assert_eq!(
            header(),
            b"elapsed_s,started,assigned,failed,in_flight,late_starts,assigned_in_second,failed_in_second,\
              assigned_p50_us,assigned_p99_us,throttled,throttled_in_second,failures\n"
        );
        let tick = Tick {
            progress: Progress {
                elapsed: std::time::Duration::from_millis(3_000_250),
                started: 120,
                assigned: 100,
                failed: 3,
                in_flight: 17,
                late_starts: 2,
                assigned_p99_us: 99_000,
                throttled: 9,
                interval: IntervalStats {
                    assigned: 40,
                    failed: 1,
                    throttled: 4,
                    assigned_p50_us: 12_000,
                    assigned_p99_us: 48_000,
                    ..IntervalStats::default()
                },
            },
            span: Default::default(),
            latencies: Default::default(),
            finished: Vec::new(),
            failures: [("timeout".to_string(), 2), ("tls".to_string(), 1)].into_iter().collect(),
            failure_reasons: Default::default(),
            phases: Vec::new(),
            draining: false,
        };
        assert_eq!(Row::of(&tick).line(), b"3000.250,120,100,3,17,2,40,1,12000,48000,9,4,timeout=2 tls=1\n");
    }
}
