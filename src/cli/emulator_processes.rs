//! `dpsbench emulator --processes N`: one emulator spread over N processes that listen on the
//! same address with `SO_REUSEPORT`, so the kernel spreads connections across them and neither
//! one process's open-files limit nor its cores cap the devices served.
//!
//! The first process binds (resolving port 0), then starts N-1 copies of this binary with the
//! resolved address and the same TLS identity (handed over in a private temp folder, deleted as
//! soon as every copy has read it). Each process has its own service state: registrations,
//! quotas and operation IDs are per process (see the README's scaling section).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;

use super::EmulatorArgs;
use crate::tls::ServerIdentity;

/// How long a copy may take to start, and to stop once told.
const COPY_DEADLINE: Duration = Duration::from_secs(30);

/// Binds the emulator's listener: shared with `SO_REUSEPORT` when it is one of several.
pub(super) fn bind(args: &EmulatorArgs) -> Result<TcpListener> {
    let address = args.listen;
    let listener = if args.processes <= 1 && args.worker_identity.is_none() {
        crate::emulator::bind(address)
    } else {
        crate::emulator::bind_shared(address)
    };
    listener.with_context(|| format!("cannot listen on {address}"))
}

/// In a copy, the identity the first process handed over; otherwise `own`.
pub(super) fn identity(args: &EmulatorArgs, own: ServerIdentity) -> Result<ServerIdentity> {
    match &args.worker_identity {
        Some(dir) => Ok(ServerIdentity::load(&dir.join("chain.pem"), &dir.join("key.pem"), None)?),
        None => Ok(own),
    }
}

/// The other processes of an emulator (none with `--processes 1`).
pub(super) struct Copies {
    children: Vec<Child>,
}

impl Copies {
    /// Starts `--processes` - 1 copies listening on `address` with `identity`; returns once each
    /// has printed its ready line.
    pub(super) fn start(args: &EmulatorArgs, address: SocketAddr, identity: &ServerIdentity) -> Result<Self> {
        let mut copies = Self { children: Vec::new() };
        if args.processes <= 1 || args.worker_identity.is_some() {
            return Ok(copies);
        }
        let handover = Handover::write(identity)?;
        let binary = std::env::current_exe().context("cannot find this dpsbench binary to start copies")?;
        for index in 1..args.processes {
            let mut command = Command::new(&binary);
            command
                .args(["emulator", "--config"])
                .arg(&args.config)
                .args(["--listen", &address.to_string(), "--worker-identity"])
                .arg(&handover.dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            die_with_parent(&mut command);
            let mut child = command.spawn().with_context(|| format!("cannot start emulator process {index}"))?;
            let mut ready = String::new();
            let stdout = child.stdout.take().expect("stdout is piped");
            let read = BufReader::new(stdout).read_line(&mut ready);
            copies.children.push(child);
            if !matches!(read, Ok(n) if n > 0) {
                bail!("emulator process {index} did not start (its error is above)");
            }
        }
        Ok(copies)
    }

    pub(super) fn count(&self) -> usize {
        self.children.len() + 1
    }

    /// Stops the copies one after the other (SIGTERM, then wait, bounded; killed past the
    /// deadline), so their closing lines on the shared stderr do not interleave.
    pub(super) fn stop(mut self) {
        let deadline = Instant::now() + COPY_DEADLINE;
        for child in &mut self.children {
            // SAFETY: kill(2) on the id of a child this process started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A copy gets SIGTERM when the process that started it dies, so none outlives the emulator.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
}

/// The TLS identity in a private temp folder (0700, files 0600), deleted on drop.
struct Handover {
    dir: PathBuf,
}

impl Handover {
    fn write(identity: &ServerIdentity) -> Result<Self> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let dir = std::env::temp_dir().join(format!("dpsbench-emulator-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let handover = Self { dir };
        let (chain, key) = identity.chain_and_key_pem();
        for (name, pem) in [("chain.pem", chain), ("key.pem", key)] {
            let path = handover.dir.join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, pem.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(handover)
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}
