//! A command's output folder: refused when it already holds a report (unless `--force`) or
//! cannot be written, made exclusively (a new folder is never shared: two commands that name
//! the same one meet an error, and a default folder takes the next free name), and taken back
//! when the command fails before it starts, so a run that never ran leaves nothing behind. No
//! rendering: callers write the files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Files whose presence means the folder already holds a report.
const REPORT_FILES: [&str; 6] =
    ["summary.json", "timeseries.csv", "conformance.json", "conformance.md", "clients.json", "clients.md"];

/// How many numbered names (`NAME-2`, `NAME-3`, ...) a default folder tries before giving up.
const MOST_NUMBERED: u32 = 1000;

/// An output folder a command is about to fill.
#[derive(Debug)]
pub(super) struct OutFolder {
    path: PathBuf,
    /// The option the path came from, for errors.
    flag: String,
    /// A default folder: when its name is taken, the next free `NAME-N` is.
    numbered: bool,
    /// Whether the folder was there when checked (then it is filled, never made).
    existed: bool,
    /// The folders `create` made, outermost first (missing parents such as `reports/`, then the
    /// folder itself), taken back by `discard`.
    created_dirs: Vec<PathBuf>,
    created_files: Vec<PathBuf>,
}

impl OutFolder {
    /// Checks `path` can take a new report without creating anything yet: it holds no report
    /// (unless `force`) and the folder it is, or the nearest one above it, can be written. `flag`
    /// names the option the path came from, for the error.
    pub(super) fn check(path: &Path, flag: &str, force: bool) -> Result<Self> {
        let existed = path.exists();
        if existed && !path.is_dir() {
            bail!("{flag} {} is a file, not a folder", path.display());
        }
        if existed && !force {
            if let Some(name) = REPORT_FILES.iter().find(|name| path.join(name).exists()) {
                bail!(
                    "{flag} {} already holds a report ({name}): choose another folder, or pass --force to overwrite it",
                    path.display()
                );
            }
        }
        check_writable(path, flag)?;
        Ok(Self {
            path: path.to_path_buf(),
            flag: flag.to_string(),
            numbered: false,
            existed,
            created_dirs: Vec::new(),
            created_files: Vec::new(),
        })
    }

    /// A default folder named `path`, or `path-2`, `path-3`, ... when that name is taken by the
    /// time it is made (another run started in the same second).
    pub(super) fn numbered(path: &Path) -> Result<Self> {
        check_writable(path, "the default report folder")?;
        Ok(Self {
            path: path.to_path_buf(),
            flag: "the default report folder".into(),
            numbered: true,
            existed: false,
            created_dirs: Vec::new(),
            created_files: Vec::new(),
        })
    }

    /// Creates the folder (and its parents): call once the command is certain to start. A folder
    /// that was not there when checked is made exclusively: when another command made it
    /// meanwhile, a default folder takes the next free name and a named one is an error.
    pub(super) fn create(&mut self) -> Result<()> {
        let flag = self.flag.clone();
        let cannot = |path: &Path| format!("cannot create {flag} {}", path.display());
        if self.existed {
            return std::fs::create_dir_all(&self.path).with_context(|| cannot(&self.path));
        }
        if let Some(parent) = self.path.parent().map(Path::to_path_buf) {
            self.create_parents(&parent).with_context(|| cannot(&parent))?;
        }
        for number in 1..=MOST_NUMBERED {
            let candidate = match number {
                1 => self.path.clone(),
                n => PathBuf::from(format!("{}-{n}", self.path.display())),
            };
            match std::fs::create_dir(&candidate) {
                Ok(()) => {
                    self.path = candidate.clone();
                    self.created_dirs.push(candidate);
                    return Ok(());
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && self.numbered => {}
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                    "{} {} was made by another command since it was checked: two commands never share a \
                     report folder; choose another",
                    self.flag,
                    self.path.display()
                ),
                Err(error) => return Err(error).with_context(|| cannot(&candidate)),
            }
        }
        bail!("{} {}: {MOST_NUMBERED} numbered names are taken", self.flag, self.path.display())
    }

    /// Makes the missing folders above the report folder, remembering those this command made
    /// (one another command made at the same moment is left to it).
    fn create_parents(&mut self, parent: &Path) -> std::io::Result<()> {
        let missing: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
            .map(Path::to_path_buf)
            .collect();
        for dir in missing.into_iter().rev() {
            match std::fs::create_dir(&dir) {
                Ok(()) => self.created_dirs.push(dir),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The path of `name` inside the folder, remembered for [`OutFolder::discard`].
    pub(super) fn file(&mut self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        self.created_files.push(path.clone());
        path
    }

    /// The folder: once created, the name it was made under.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes back what the command made: the folder when it made it (else its own files), then
    /// the parents it made while they are empty. Best effort: the command's own error is the one
    /// worth reporting.
    pub(super) fn discard(self) {
        if self.created_dirs.last() == Some(&self.path) {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            for file in &self.created_files {
                let _ = std::fs::remove_file(file);
            }
        }
        for dir in self.created_dirs.iter().rev().filter(|dir| **dir != self.path) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Checks a report can be written at `path` before any work starts: the folder itself when it
/// is there, else the nearest folder above it, must take a new file (tried with one, removed at
/// once).
fn check_writable(path: &Path, flag: &str) -> Result<()> {
    let nearest = path.ancestors().find(|dir| dir.as_os_str().is_empty() || dir.exists()).unwrap_or(path);
    let nearest = if nearest.as_os_str().is_empty() { Path::new(".") } else { nearest };
    if !nearest.is_dir() {
        bail!("{flag} {}: {} is a file, not a folder", path.display(), nearest.display());
    }
    let probe = nearest.join(format!(".dpsbench-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // A probe of this process left over from an earlier check: the folder takes files.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => bail!("{flag} {}: cannot write in {}: {error}", path.display(), nearest.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dpsbench-out-folder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_folder_holding_a_report_is_refused_unless_forced() {
        let dir = scratch("refused");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        let err = OutFolder::check(&dir, "--out", false).unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("already holds a report") && err.contains("--force"), "{err}");
        assert!(OutFolder::check(&dir, "--out", true).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn discard_removes_the_folders_it_made_and_only_its_own_files_in_an_old_one() {
        let fresh = scratch("fresh").join("nested");
        let mut folder = OutFolder::check(&fresh, "--out", false).unwrap();
        assert!(!fresh.exists(), "check creates nothing");
        folder.create().unwrap();
        std::fs::write(folder.file("timeseries.csv"), "header\n").unwrap();
        folder.discard();
        assert!(!fresh.parent().unwrap().exists(), "the missing parent it made is gone too");

        let old = scratch("old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("notes.txt"), "mine").unwrap();
        let mut folder = OutFolder::check(&old, "--out", false).unwrap();
        folder.create().unwrap();
        std::fs::write(folder.file("timeseries.csv"), "header\n").unwrap();
        folder.discard();
        assert!(old.join("notes.txt").exists() && !old.join("timeseries.csv").exists());
        let _ = std::fs::remove_dir_all(&old);
    }

    #[test]
    fn a_default_folder_made_meanwhile_is_never_shared_and_a_named_one_is_an_error() {
        let base = scratch("numbered");
        let path = base.join("reports").join("quick-20261207-235000");
        let (mut first, mut second) = (OutFolder::numbered(&path).unwrap(), OutFolder::numbered(&path).unwrap());
        first.create().unwrap();
        second.create().unwrap();
        assert_eq!(first.path(), path);
        assert_eq!(second.path(), base.join("reports").join("quick-20261207-235000-2"));
        second.discard();
        assert!(path.is_dir(), "the other run's folder and the parent it shares stay");

        let named = base.join("named");
        let mut late = OutFolder::check(&named, "--out", false).unwrap();
        OutFolder::check(&named, "--out", false).unwrap().create().unwrap();
        let err = late.create().unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("made by another command"), "{err}");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_refused_at_the_check_naming_the_flag() {
        let base = scratch("unwritable");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("a-file"), "").unwrap();
        let path = base.join("a-file").join("out");
        let err = OutFolder::check(&path, "--out", false).unwrap_err().to_string();
        assert!(err.starts_with(&format!("--out {}", path.display())) && err.contains("is a file"), "{err}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
