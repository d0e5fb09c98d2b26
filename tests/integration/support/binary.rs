//! Running the `dpsbench` binary as scripts do: the binary, scratch folders and files, a child
//! process killed when its test ends (and waited for without polling), and a standalone
//! emulator on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_dpsbench");
pub const TV1_GROUP_KEY: &str =
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

/// A fresh scratch folder, removed with everything in it when the test ends (its value is
/// dropped); it reads as a `Path`.
pub fn temp_dir(name: &str) -> Scratch {
    Scratch(tempfile::Builder::new().prefix(&format!("dpsbench-it-{name}-")).tempdir().unwrap())
}

/// A [`tempfile::TempDir`] that dereferences to its path, so `dir.join(..)` and `&dir` read as
/// they do for a `PathBuf`.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

pub fn dpsbench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("DPS_GROUP_KEY").env_remove("DPS_DEVICE_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Writes a CA (`trust.pem`) and a server chain (`chain.pem`, `key.pem`) for localhost and
/// 127.0.0.1 into `dir`, as an operator would provide them; returns the CA's PEM.
pub fn write_certificates(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "test CA from files");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    write(dir, "chain.pem", &format!("{}{}", server.pem(), ca.pem()));
    write(dir, "key.pem", &server_key.serialize_pem());
    write(dir, "trust.pem", &ca.pem());
    ca.pem()
}

/// A child process killed when the test ends, even by a failed assertion.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Starts `dpsbench emulator` on a free loopback port; returns the child and the port once it
/// printed its ready line. Its stderr stays piped for the caller to read.
pub fn spawn_emulator(config: &Path, ca_out: &Path) -> (KillOnDrop, String) {
    spawn_emulator_with(config, ca_out, &[])
}

/// Starts `dpsbench emulator` with `extra` arguments on a free loopback port; returns the child
/// and its ready line (stdout's first). Its stderr stays piped for the caller to read.
pub fn spawn_emulator_ready(config: &Path, ca_out: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    let mut emulator = Command::new(BIN)
        .args(["emulator", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--ca-out", ca_out.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(emulator.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    (KillOnDrop(emulator), ready)
}

/// [`spawn_emulator`] with `extra` arguments.
pub fn spawn_emulator_with(config: &Path, ca_out: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    let (emulator, ready) = spawn_emulator_ready(config, ca_out, extra);
    let port = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no bound address in {ready:?}"))
        .to_string();
    (emulator, port)
}

/// A standalone emulator whose every device registers once (202, retry-after 1 s) and polls
/// once (200): every count of a run against it is decided by the plan, not by timing. Returns
/// the child and its port; its CA goes to `dir/ca.pem`.
pub fn deterministic_emulator(dir: &Path, id_scope: &str) -> (KillOnDrop, String) {
    let config = write(
        dir,
        "emulator.toml",
        &format!(
            "id_scope = \"{id_scope}\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 1\nassign_delay_ms = 20\n\
             [[enrollment_groups]]\nname = \"bench\"\nprimary_key = \"{TV1_GROUP_KEY}\"\n"
        ),
    );
    spawn_emulator(&config, &dir.join("ca.pem"))
}

/// Starts `dpsbench run SCENARIO --quiet --out OUT EXTRA...` with `BENCH_KEY` set to
/// [`TV1_GROUP_KEY`]; stderr piped.
pub fn run_to(scenario: &Path, out: &Path, extra: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(BIN)
            .args(["run", scenario.to_str().unwrap(), "--quiet", "--out"])
            .arg(out)
            .args(extra)
            .env("BENCH_KEY", TV1_GROUP_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits up to 90 s for `child` to exit 0 (`what` names it in the failure).
pub fn finish(mut child: KillOnDrop, what: &str) {
    let status = wait_for_exit(&mut child, Duration::from_secs(90));
    let status = status.unwrap_or_else(|| panic!("{what} did not finish in time"));
    assert_eq!(status.code(), Some(0), "{what} exited {status}");
}

/// Waits up to `limit` for `child` to exit; its status, or `None` past the limit (the child is
/// left running).
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    exited_within(child, limit).then(|| child.wait().unwrap())
}

/// Whether `child` exits within `limit`, leaving it unreaped for `wait`. No polling: a thread
/// blocks in `waitid(WNOWAIT)` until the child exits.
fn exited_within(child: &Child, limit: Duration) -> bool {
    let pid = child.id();
    let (exited, on_exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        loop {
            // SAFETY: `info` is a zeroed siginfo_t for waitid to fill; WNOWAIT reaps nothing, so
            // the `Child` still owns the exit status and the pid cannot be reused meanwhile.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let waited = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if waited == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        let _ = exited.send(());
    });
    on_exit.recv_timeout(limit).is_ok()
}
