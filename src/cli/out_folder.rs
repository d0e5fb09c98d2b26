//! A command's output folder: refused when it already holds a report (unless `--force`), and
//! taken back when the command fails before it starts, so a run that never ran leaves nothing
//! behind. No rendering: callers write the files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Files whose presence means the folder already holds a report.
const REPORT_FILES: [&str; 6] =
    ["summary.json", "timeseries.csv", "conformance.json", "conformance.md", "clients.json", "clients.md"];

/// An output folder a command is about to fill.
#[derive(Debug)]
pub(super) struct OutFolder {
    path: PathBuf,
    /// The outermost folder `create` makes (the folder itself or a missing parent such as
    /// `reports/`), removed whole by `discard`.
    outermost_new: Option<PathBuf>,
    created_files: Vec<PathBuf>,
}

impl OutFolder {
    /// Checks `path` can take a new report without creating anything yet. `flag` names the
    /// option the path came from, for the error.
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
        let outermost_new = path.ancestors().take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists()).last();
        Ok(Self {
            path: path.to_path_buf(),
            outermost_new: outermost_new.map(Path::to_path_buf),
            created_files: Vec::new(),
        })
    }

    /// Creates the folder (and its parents): call once the command is certain to start.
    pub(super) fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create output folder {}", self.path.display()))
    }

    /// The path of `name` inside the folder, remembered for [`OutFolder::discard`].
    pub(super) fn file(&mut self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        self.created_files.push(path.clone());
        path
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes back what the command made: the folders it made, else its own files. Best effort:
    /// the command's own error is the one worth reporting.
    pub(super) fn discard(self) {
        match &self.outermost_new {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => {
                for file in &self.created_files {
                    let _ = std::fs::remove_file(file);
                }
            }
        }
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
}
