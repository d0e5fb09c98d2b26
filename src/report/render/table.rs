//! The report tables, built once from a summary and rendered per format: the terminal's aligned
//! columns, Markdown and HTML (as hyperfine's exporters share one table builder). A table that
//! appears in several formats has one builder here, so its columns cannot drift apart. Pure.

use std::fmt::Write as _;

use super::text::{escape, micros, number, observed};
use crate::metrics::{Phase, Summary};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column: its header, alignment and width on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    pub align: Align,
    pub width: usize,
}

/// One cell: text, or a name (a phase, a kind) that Markdown sets as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Name(String),
}

impl Cell {
    fn text(&self) -> &str {
        match self {
            Cell::Text(text) | Cell::Name(text) => text,
        }
    }
}

/// A table: its title (a heading in Markdown and HTML), columns and rows, and a note under it
/// that says what a row counts where its name alone would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub title: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    pub note: Option<String>,
}

const fn left(header: &'static str, width: usize) -> Column {
    Column { header, align: Align::Left, width }
}

const fn right(header: &'static str, width: usize) -> Column {
    Column { header, align: Align::Right, width }
}

/// Latency percentiles of every phase that measured something.
pub fn phases(r: &Summary) -> Table {
    let rows = Phase::ALL
        .into_iter()
        .filter_map(|phase| r.phase(phase).filter(|p| p.count > 0).map(|p| (phase, p)))
        .map(|(phase, p)| {
            let mut row = vec![Cell::Name(phase.as_str().into()), Cell::Text(p.count.to_string())];
            row.extend([p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us].map(|us| Cell::Text(micros(us))));
            row
        })
        .collect();
    let columns = vec![
        left("phase", 18),
        right("count", 8),
        right("p50", 10),
        right("p90", 10),
        right("p99", 10),
        right("p99.9", 10),
        right("max", 10),
    ];
    Table { title: "Latency by phase", columns, rows, note: end_to_end_note(r) }
}

/// What `end_to_end` counts, said wherever its row is: every device that ended, however it
/// ended, not only the assigned ones.
fn end_to_end_note(r: &Summary) -> Option<String> {
    r.phase(Phase::EndToEnd).filter(|p| p.count > 0)?;
    let d = &r.devices;
    Some(format!(
        "end_to_end counts every device that ended, from its intended start: {} assigned, {} failed and {} aborted",
        d.assigned, d.failed, d.aborted
    ))
}

/// Devices by outcome, the achieved rate and late starts.
pub fn outcomes(r: &Summary) -> Table {
    let d = &r.devices;
    let mut row: Vec<Cell> =
        [d.total, d.assigned, d.failed, d.aborted, d.not_finished].map(|n| Cell::Text(n.to_string())).into();
    row.extend([Cell::Text(format!("{:.1}", r.flows_per_second)), Cell::Text(r.late_starts.to_string())]);
    let columns = ["devices", "assigned", "failed", "aborted", "not finished", "assigned/s", "late starts"]
        .map(|header| right(header, header.len()))
        .into();
    Table { title: "Outcomes", columns, rows: vec![row], note: None }
}

/// Register attempts and polls per device.
pub fn retries(r: &Summary) -> Table {
    let row = |name: &str, c: &crate::metrics::CountStats| {
        let mut row = vec![Cell::Text(name.into()), Cell::Text(format!("{:.2}", c.mean))];
        row.extend([c.p50, c.p99, c.max].map(|n| Cell::Text(n.to_string())));
        row
    };
    let columns = vec![left("per device", 18), right("mean", 6), right("p50", 6), right("p99", 6), right("max", 6)];
    Table {
        title: "Retries",
        columns,
        rows: vec![row("register attempts", &r.register_attempts), row("polls", &r.polls_per_device)],
        note: None,
    }
}

/// The `[slo]` gates: each one's limit, what the run measured, and whether it held.
pub fn gates(slo: &crate::slo::SloVerdict) -> Table {
    let rows = slo
        .gates
        .iter()
        .map(|(name, gate)| {
            let verdict = match gate.held {
                Some(true) => "✅ held",
                Some(false) => "❌ failed",
                None => "not judged",
            };
            vec![
                Cell::Name(name.clone()),
                Cell::Text(number(gate.limit)),
                Cell::Text(observed(gate.observed)),
                Cell::Text(verdict.into()),
            ]
        })
        .collect();
    let columns = vec![left("gate", 32), right("limit", 10), right("observed", 16), left("verdict", 10)];
    Table { title: "SLO gates", columns, rows, note: None }
}

impl Table {
    /// Aligned columns, one space apart, header first, the note last; no title.
    pub fn terminal(&self) -> String {
        let mut out = String::new();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&self.columns)
                .map(|(text, c)| match c.align {
                    Align::Left => format!("{text:<width$}", width = c.width),
                    Align::Right => format!("{text:>width$}", width = c.width),
                })
                .collect();
            padded.join(" ")
        };
        let _ = writeln!(out, "{}", line(self.columns.iter().map(|c| c.header).collect()));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row.iter().map(Cell::text).collect()));
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// A Markdown table (names as code), without its heading; the note a paragraph under it.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let headers: Vec<&str> = self.columns.iter().map(|c| c.header).collect();
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let rules: Vec<&str> =
            self.columns.iter().map(|c| if c.align == Align::Left { "---" } else { "---:" }).collect();
        let _ = writeln!(out, "|{}|", rules.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|cell| match cell {
                    Cell::Text(text) => text.clone(),
                    Cell::Name(name) => format!("`{name}`"),
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }

    /// An HTML table under an `<h2>` of its title, every cell escaped, the note under it.
    pub fn html(&self) -> String {
        let mut out = format!("<h2>{}</h2>\n<table>\n", escape(self.title));
        let headers: String = self.columns.iter().map(|c| format!("<th>{}</th>", escape(c.header))).collect();
        let _ = writeln!(out, "<tr>{headers}</tr>");
        for row in &self.rows {
            let cells: String = row.iter().map(|cell| format!("<td>{}</td>", escape(cell.text()))).collect();
            let _ = writeln!(out, "<tr>{cells}</tr>");
        }
        out.push_str("</table>\n");
        if let Some(note) = &self.note {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_renders_the_same_cells_in_every_format() {
        let summary: crate::results::RunSummary =
            serde_json::from_value(crate::report::tests::summary()).expect("the test summary matches RunSummary");
        let table = phases(&summary.results);
        assert!(!table.rows.is_empty());
        let (terminal, markdown, html) = (table.terminal(), table.markdown(), table.html());
        for row in &table.rows {
            for cell in row {
                assert!(terminal.contains(cell.text()), "{}", cell.text());
                assert!(markdown.contains(cell.text()) && html.contains(cell.text()), "{}", cell.text());
            }
        }
        // The note under the phases says what end_to_end counts: one more line, a paragraph in Markdown.
        let note = table.note.as_deref().expect("the phases have an end_to_end row, and its note");
        assert!(terminal.ends_with(&format!("{note}\n")) && markdown.ends_with(&format!("\n\n{note}\n")), "{note}");
        assert!(html.contains(&format!("<p class=\"note\">{note}</p>")), "{html}");
        assert_eq!(terminal.lines().count(), table.rows.len() + 2);
        assert_eq!(markdown.lines().count(), table.rows.len() + 4);
        assert!(markdown.lines().nth(1).is_some_and(|rule| rule == "|---|---:|---:|---:|---:|---:|---:|"));
        assert!(markdown.contains("| `assigned` |"), "{markdown}");
        assert_eq!(html.matches("<tr>").count(), table.rows.len() + 1);
    }

    /// Issue 35: `end_to_end` holds failed and aborted devices too, and the phases table says so
    /// under it, with how many of each.
    #[test]
    fn the_phases_table_says_end_to_end_counts_failed_and_aborted_devices() {
        let mut summary = crate::report::tests::summary();
        summary["devices"] =
            serde_json::json!({ "total": 450, "assigned": 400, "failed": 30, "aborted": 15, "not_finished": 5 });
        let summary: crate::results::RunSummary = serde_json::from_value(summary).expect("a RunSummary");
        let note = phases(&summary.results).note.expect("a note under the phases");
        assert_eq!(
            note,
            "end_to_end counts every device that ended, from its intended start: 400 assigned, 30 failed and 15 aborted"
        );
    }
}
