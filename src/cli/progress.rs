//! `run`'s live progress on stderr: a bar on a terminal, a line a second otherwise.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::early_warning;
use super::sinks::{Sink, Warnings};
use crate::report::render::text::micros;
use crate::results::Tick;
use crate::scenario::Plan;

/// Live progress: a bar on a terminal, a plain line per second otherwise, nothing with --quiet.
pub(super) struct ProgressView {
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    announced: bool,
    banner: String,
    drain_announced: bool,
    /// Whether the early word on every device failing alike was said (once a run).
    early_warned: bool,
    /// The last plain line printed, time and figures, so no tick repeats one.
    last: Option<(String, String)>,
}

impl ProgressView {
    pub(super) fn new(quiet: bool, plan: &Plan, out: &Path) -> Self {
        use std::io::IsTerminal as _;
        let banner = format!(
            "dpsbench: up to {} devices, {}, from {} (results in {})",
            plan.stop.devices,
            plan.load.describe(),
            plan.file.display(),
            out.display()
        );
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(plan.stop.devices);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} finished  {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar
        });
        Self { quiet, bar, announced: false, banner, drain_announced: false, early_warned: false, last: None }
    }

    pub(super) fn show(&mut self, tick: &Tick) {
        if self.quiet {
            return;
        }
        if !self.announced {
            // Printed once the target is set up, so a setup error stays the only line.
            self.announced = true;
            self.warn(&self.banner.clone());
        }
        if !self.early_warned
            && let Some(line) = early_warning::every_device_failed_alike(tick)
        {
            self.early_warned = true;
            self.warn(&line);
        }
        let p = &tick.progress;
        if tick.draining && !self.drain_announced {
            self.drain_announced = true;
            self.warn(&format!(
                "dpsbench: interrupted: no more arrivals; draining {} devices in flight (interrupt again to stop now)",
                p.in_flight
            ));
        }
        let line = format!(
            "started {}  assigned {}  failed {}  in flight {}  late {}  {} assigned/s  throttled {} ({}/s)  p99 assigned {}",
            p.started,
            p.assigned,
            p.failed,
            p.in_flight,
            p.late_starts,
            p.interval.assigned,
            p.throttled,
            p.interval.throttled,
            micros(p.assigned_p99_us)
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.assigned + p.failed);
                bar.set_message(line);
            }
            None => {
                let previous = self.last.as_ref().map(|(label, previous)| (label.as_str(), previous.as_str()));
                if let Some(label) = elapsed_label(p.elapsed, &line, previous) {
                    errln!("{label} {line}");
                    self.last = Some((label, line));
                }
            }
        }
    }

    pub(super) fn warn(&self, message: &str) {
        self.warnings().warn(message);
    }

    /// Where the run's other outputs say what went wrong: above the bar, or on a line of their own.
    pub(super) fn warnings(&self) -> Warnings {
        Warnings::above(self.bar.clone())
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A plain progress line's time, or `None` when the line would repeat the one before: the
/// elapsed seconds cut to a tenth (`[   3.9s]`, so the run's first tick and its last, partial
/// second never share a label with their neighbours), to the millisecond when two ticks fall
/// in one tenth.
fn elapsed_label(elapsed: Duration, line: &str, previous: Option<(&str, &str)>) -> Option<String> {
    let seconds = elapsed.as_secs_f64();
    let tenths = format!("[{:>6.1}s]", (seconds * 10.0).floor() / 10.0);
    match previous {
        Some((label, figures)) if label == tenths && figures == line => None,
        Some((label, _)) if label == tenths => Some(format!("[{:>6.3}s]", (seconds * 1000.0).floor() / 1000.0)),
        _ => Some(tenths),
    }
}

impl Sink for ProgressView {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.show(tick);
        Ok(())
    }

    fn finish(&mut self) {
        ProgressView::finish(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_progress_lines_share_a_time_or_repeat() {
        let at = |ms: u64| Duration::from_millis(ms);
        assert_eq!(elapsed_label(at(3), "a", None).as_deref(), Some("[   0.0s]"));
        // A late first second and the run's end a little before a whole second keep apart.
        assert_eq!(elapsed_label(at(953), "b", Some(("[   0.0s]", "a"))).as_deref(), Some("[   0.9s]"));
        assert_eq!(elapsed_label(at(1001), "c", Some(("[   0.9s]", "b"))).as_deref(), Some("[   1.0s]"));
        assert_eq!(elapsed_label(at(1042), "d", Some(("[   1.0s]", "c"))).as_deref(), Some("[ 1.042s]"));
        assert_eq!(elapsed_label(at(1042), "c", Some(("[   1.0s]", "c"))), None, "the same figures once");
        assert_eq!(elapsed_label(at(12_345_678), "e", None).as_deref(), Some("[12345.6s]"));
    }
}
