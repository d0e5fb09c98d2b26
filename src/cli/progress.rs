//! `run`'s live progress on stderr: a bar on a terminal, a line a second otherwise.

use std::path::Path;

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
        Self { quiet, bar, announced: false, banner, drain_announced: false, early_warned: false }
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
            None => errln!("[{:>4}s] {line}", p.elapsed.as_secs()),
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

impl Sink for ProgressView {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.show(tick);
        Ok(())
    }

    fn finish(&mut self) {
        ProgressView::finish(self);
    }
}
