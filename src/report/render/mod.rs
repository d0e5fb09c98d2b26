//! What a run's report says, rendered: the summary table of the terminal, `report.md` and
//! `report.html` (tables and charts). Every renderer is pure, a report in and text out, and
//! builds its tables from one model, [`table`], over the number and text helpers of [`text`].

pub mod charts;
pub mod files;
mod heatmap;
pub mod html;
mod html_tables;
mod html_window;
mod lines;
pub mod markdown;
mod no_data;
pub mod table;
pub mod terminal;
pub mod text;
