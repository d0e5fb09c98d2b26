//! The outputs a run feeds each tick (timeseries.csv, latency.hlog, devices.csv, the live
//! metrics page, the progress view), each behind one [`Sink`], as hyperfine puts each of its
//! outputs behind one exporter. A sink that cannot take a tick is said on stderr and the run
//! goes on: the files written so far stay whole.

use anyhow::Result;

use super::error_line;
use crate::report::format::report::PerSecond;
use crate::results::Tick;

/// One output of a run, fed every tick as it comes.
pub(super) trait Sink {
    /// Takes `tick`. An error is warned about; the next tick comes all the same.
    fn tick(&mut self, tick: &Tick) -> Result<()>;

    /// The run ended (the last tick was taken).
    fn finish(&mut self) {}
}

/// What the run keeps each second for report.md and report.html, rendered from memory at its end.
impl Sink for &mut PerSecond {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.take(tick);
        Ok(())
    }
}

/// The run's sinks, fed in order: the live page before the progress line (a line on stderr
/// means its page is served), the files after it.
pub(super) struct Sinks<'a> {
    sinks: Vec<Box<dyn Sink + 'a>>,
    warnings: Warnings,
}

impl<'a> Sinks<'a> {
    /// No sinks yet; failures are said through `warnings`.
    pub(super) fn new(warnings: Warnings) -> Self {
        Self { sinks: Vec::new(), warnings }
    }

    pub(super) fn push(&mut self, sink: impl Sink + 'a) {
        self.sinks.push(Box::new(sink));
    }

    /// Feeds `tick` to every sink in order; one that fails is warned about, the others go on.
    pub(super) fn tick(&mut self, tick: &Tick) {
        for sink in &mut self.sinks {
            if let Err(error) = sink.tick(tick) {
                self.warnings.warn(&error_line(&error));
            }
        }
    }

    pub(super) fn finish(&mut self) {
        for sink in &mut self.sinks {
            sink.finish();
        }
    }
}

/// Warnings on stderr, printed above the progress bar when there is one (a handle on the same
/// bar), else on lines of their own.
#[derive(Clone, Default)]
pub(super) struct Warnings {
    bar: Option<indicatif::ProgressBar>,
}

impl Warnings {
    /// Warnings printed above `bar` when there is one.
    pub(super) fn above(bar: Option<indicatif::ProgressBar>) -> Self {
        Self { bar }
    }

    pub(super) fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => errln!("{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the ticks it takes and fails every other one.
    struct Flaky<'a>(&'a mut Vec<u64>);

    impl Sink for Flaky<'_> {
        fn tick(&mut self, tick: &Tick) -> Result<()> {
            self.0.push(tick.progress.started);
            anyhow::ensure!(tick.progress.started % 2 == 0, "cannot write flaky.csv");
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_does_not_keep_the_next_one_or_the_next_tick_from_coming() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        let mut sinks = Sinks::new(Warnings::default());
        sinks.push(Flaky(&mut first));
        sinks.push(Flaky(&mut second));
        for started in 1..=3 {
            let mut tick = Tick::default();
            tick.progress.started = started;
            sinks.tick(&tick);
        }
        sinks.finish();
        drop(sinks);
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(second, [1, 2, 3]);
    }
}
