//! `dpsbench emulator --client-report DIR`: the emulator judges every client it serves, and
//! when it stops (SIGINT/SIGTERM, or `--exit-after N` finished client connections) writes
//! clients.json, clients.md and clients.junit.xml into DIR. Exit status 1 when a client broke a
//! must-check, [`EXIT_NOTHING_JUDGED`] when no client was judged (no verdict is no pass).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::out_folder::OutFolder;
use crate::emulator::client_checks::report::TlsFailure;
use crate::emulator::client_checks::{self, Judge, JudgeConfig};

/// Exit code of a judging emulator that judged no client (none got past its TLS handshake, or
/// none connected): no verdict, which a CI gate must not read as a pass.
pub const EXIT_NOTHING_JUDGED: i32 = 3;

/// The client-check options of `dpsbench emulator`.
#[derive(Debug, Args)]
pub struct ClientReportArgs {
    /// Judge every client against the client checks (docs/clients.md) and write clients.json,
    /// clients.md and clients.junit.xml into DIR when the emulator stops; exit 1 when a client
    /// broke a must-check, 3 when no client was judged (the report says why: the TLS failures).
    #[arg(long, value_name = "DIR")]
    pub client_report: Option<PathBuf>,
    /// Stop after N client connections (each CONNECT to its close) ended, for CI. A connection
    /// check (CONNECT then DISCONNECT with nothing between, as a run's preflight) is not counted.
    #[arg(long, value_name = "N", requires = "client_report")]
    pub exit_after: Option<u64>,
    /// Keep per-connection detail for this registration ID too (repeatable); the first few
    /// clients that broke checks are always detailed.
    #[arg(long, value_name = "ID", requires = "client_report")]
    pub client_detail: Vec<String>,
    /// Overwrite the client report already in --client-report.
    #[arg(long, requires = "client_report")]
    pub force: bool,
}

/// A judging emulator's report folder, checked before the emulator starts.
pub(super) struct ClientReport {
    folder: OutFolder,
    exit_after: Option<u64>,
}

impl ClientReport {
    /// Checks the folder (refused when it holds a report, unless `--force`) and builds the
    /// judge; `None` without `--client-report`.
    pub(super) fn prepare(args: &ClientReportArgs, processes: u16) -> Result<Option<(Self, Judge)>> {
        let Some(dir) = &args.client_report else { return Ok(None) };
        if processes > 1 {
            bail!("--client-report judges the clients of one process: use --processes 1");
        }
        let folder = OutFolder::check(dir, "--client-report", args.force)?;
        let judge = Judge::new(JudgeConfig { detail: args.client_detail.clone() });
        Ok(Some((Self { folder, exit_after: args.exit_after }, judge)))
    }

    /// Resolves once `--exit-after` client connections have ended (never without it).
    pub(super) async fn enough(&self, judge: &Judge) {
        let Some(count) = self.exit_after else { return std::future::pending().await };
        let mut every = tokio::time::interval(Duration::from_millis(50));
        while judge.finished() < count {
            every.tick().await;
        }
    }

    /// Writes the three reports, with the TLS handshakes that failed (`(reason, count)`);
    /// returns the exit status (1 when a must-check was broken, [`EXIT_NOTHING_JUDGED`] when no
    /// client was judged).
    pub(super) fn write(mut self, judge: &Judge, tls_failures: &[(String, u64)]) -> Result<i32> {
        let mut report = judge.report();
        report.tls_failures = TlsFailure::of(tls_failures);
        self.folder.create()?;
        let files: [(&str, Vec<u8>); 3] = [
            ("clients.json", client_checks::report::json(&report)),
            ("clients.md", client_checks::report::markdown(&report).into_bytes()),
            ("clients.junit.xml", client_checks::report::junit(&report).into_bytes()),
        ];
        for (name, bytes) in files {
            let path = self.folder.file(name);
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        if report.judged_nothing() {
            super::emulator_log::log(&format!(
                "dpsbench emulator: client checks: NO VERDICT, no client was judged (0 connections): {}; report in {}",
                report.why_nothing_judged(),
                self.folder.path().display()
            ));
            return Ok(EXIT_NOTHING_JUDGED);
        }
        let broken = |level| {
            report.checks.iter().filter(|c| c.check.level == level && c.verdict == client_checks::Verdict::Fail).count()
        };
        super::emulator_log::log(&format!(
            "dpsbench emulator: client checks: {} connections judged, {} must-checks and {} should-checks broken; \
             report in {}",
            report.connections,
            broken(crate::grading::Level::Must),
            broken(crate::grading::Level::Should),
            self.folder.path().display()
        ));
        Ok(i32::from(report.must_broken))
    }
}
