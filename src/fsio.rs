//! Atomic, all-or-nothing file output: the one place where meshtrust writes files.
//!
//! Every file is first written in full to a temporary file in its target directory, with its
//! final permissions from creation (keys `0600`, never world-readable even for an instant;
//! certificates and bundles `0644`), flushed to disk (`fsync`), and only then moved into place.
//! A set of files is committed together: all temporary files are written before the first
//! one is moved into place, and if anything fails, every file already moved is removed (or,
//! with `force`, the previous content is put back), every temporary file is deleted and every
//! directory this call created is removed again. Existing files are never replaced unless
//! `force` is set; without it the move into place is a hard link, which the kernel refuses if
//! the name appeared in the meantime.
//!
//! ```
//! use meshtrust::fsio::{self, OutFile};
//! let dir = tempfile::tempdir()?;
//! let files = vec![
//!     OutFile::public(dir.path().join("root-cert.pem"), b"cert".to_vec()),
//!     OutFile::secret(dir.path().join("root-key.pem"), b"key".to_vec().into()),
//! ];
//! let written = fsio::write_all(&files, false)?;
//! assert_eq!(written.len(), 2);
//! // A second run refuses to overwrite and changes nothing.
//! assert!(matches!(fsio::write_all(&files, false), Err(fsio::FsError::Exists { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The module is not pure (it is the file-system edge); the rest of the library is.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use zeroize::Zeroizing;

/// Permissions of certificates and bundles.
pub const PUBLIC_MODE: u32 = 0o644;
/// Permissions of private keys.
pub const SECRET_MODE: u32 = 0o600;
/// Permissions of directories this module creates (before the umask).
pub const DIR_MODE: u32 = 0o755;

/// One file to write: where, what, and whether it is secret.
///
/// Contents are held in a zeroizing buffer; `Debug` shows the path, size and mode only.
#[derive(Clone)]
pub struct OutFile {
    path: PathBuf,
    contents: Zeroizing<Vec<u8>>,
    secret: bool,
}

impl OutFile {
    /// A certificate, bundle or other public file (mode `0644`).
    pub fn public(path: impl Into<PathBuf>, contents: Vec<u8>) -> OutFile {
        OutFile {
            path: path.into(),
            contents: Zeroizing::new(contents),
            secret: false,
        }
    }

    /// A private key or other secret (mode `0600` from creation).
    pub fn secret(path: impl Into<PathBuf>, contents: Zeroizing<Vec<u8>>) -> OutFile {
        OutFile {
            path: path.into(),
            contents,
            secret: true,
        }
    }

    /// Target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes to write.
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }

    /// True for secrets (written `0600`).
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// The permission bits the file gets.
    pub fn mode(&self) -> u32 {
        if self.secret {
            SECRET_MODE
        } else {
            PUBLIC_MODE
        }
    }
}

impl fmt::Debug for OutFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .finish()
    }
}

/// What [`write_all`] did for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The path written.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// True when an existing file was replaced (only with `force`).
    pub replaced: bool,
}

/// Why files were not written. When this is returned, nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A target exists and `force` is not set.
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The existing path.
        path: PathBuf,
    },
    /// The same target appears twice in one call.
    #[error("{}: listed twice in one write", path.display())]
    Duplicate {
        /// The path.
        path: PathBuf,
    },
    /// The target has no file name (e.g. `/` or `dir/..`).
    #[error("{}: not a file path", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// An operating-system error.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was being done (`create directory`, `write`, `rename`...).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FsError::Exists { path }
            | FsError::Duplicate { path }
            | FsError::NotAFile { path }
            | FsError::Io { path, .. } => path,
        }
    }
}

/// Writes every file or none (see the module docs). Returns what was written, in input order.
pub fn write_all(files: &[OutFile], force: bool) -> Result<Vec<Written>, FsError> {
    write_all_with(files, force, &mut |_, _| Ok(()))
}

/// The steps of a write, for fault injection in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    CreateDir,
    CreateTemp,
    WriteTemp,
    Backup,
    Commit,
    SyncDir,
}

/// A fault injector: called before each step; an error makes that step fail.
pub(crate) type Hook<'a> = dyn FnMut(Step, &Path) -> io::Result<()> + 'a;

struct Plan<'a> {
    file: &'a OutFile,
    dir: PathBuf,
    /// Deleted when dropped: a failed write leaves no temporary file behind.
    temp: Option<TempPath>,
    /// Deleted when dropped, unless a rollback puts it back in place.
    backup: Option<TempPath>,
    committed: bool,
    existed: bool,
}

pub(crate) fn write_all_with(
    files: &[OutFile],
    force: bool,
    hook: &mut Hook<'_>,
) -> Result<Vec<Written>, FsError> {
    // 1. Validate everything before touching the disk.
    let mut seen = HashSet::new();
    let mut plans = Vec::with_capacity(files.len());
    for file in files {
        let path = &file.path;
        if path.file_name().is_none() {
            return Err(FsError::NotAFile { path: path.clone() });
        }
        if !seen.insert(path.clone()) {
            return Err(FsError::Duplicate { path: path.clone() });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let existed = fs::symlink_metadata(path).is_ok();
        if existed && !force {
            return Err(FsError::Exists { path: path.clone() });
        }
        plans.push(Plan {
            file,
            dir,
            temp: None,
            backup: None,
            committed: false,
            existed,
        });
    }

    let mut created_dirs: Vec<PathBuf> = Vec::new();
    let result = stage_and_commit(&mut plans, &mut created_dirs, hook);
    match result {
        Ok(()) => {
            // The backups of replaced files are dropped (deleted) with `plans`.
            Ok(plans
                .iter()
                .map(|p| Written {
                    path: p.file.path.clone(),
                    mode: p.file.mode(),
                    replaced: p.existed,
                })
                .collect())
        }
        Err(e) => {
            rollback(&mut plans, &created_dirs);
            Err(e)
        }
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn stage_and_commit(
    plans: &mut [Plan<'_>],
    created_dirs: &mut Vec<PathBuf>,
    hook: &mut Hook<'_>,
) -> Result<(), FsError> {
    // 2. Directories, recording every one this call creates (outermost first).
    for plan in plans.iter() {
        create_dirs(&plan.dir, created_dirs, hook)?;
    }
    // 3. Every temporary file, complete, with its final mode and fsynced.
    for plan in plans.iter_mut() {
        let temp = write_temp(plan.file, &plan.dir, hook)?;
        plan.temp = Some(temp);
    }
    // 4. Back up files about to be replaced (hard link, else copy) so a failure can restore.
    for plan in plans.iter_mut() {
        if plan.existed {
            let backup = backup(&plan.file.path, &plan.dir, hook)?;
            plan.backup = Some(backup);
        }
    }
    // 5. Move into place.
    for plan in plans.iter_mut() {
        let target = plan.file.path.clone();
        hook(Step::Commit, &target).map_err(io_err(&target, "rename into place"))?;
        let Some(temp) = plan.temp.take() else {
            return Err(FsError::NotAFile { path: target });
        };
        let moved = if plan.existed {
            temp.persist(&target)
        } else {
            // No clobbering: renameat2(RENAME_NOREPLACE), or a hard link, which the kernel
            // refuses if the name appeared since the check (a concurrent writer).
            temp.persist_noclobber(&target)
        };
        if let Err(e) = moved {
            plan.temp = Some(e.path);
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                FsError::Exists { path: target }
            } else {
                io_err(&target, "rename into place")(e.error)
            });
        }
        plan.committed = true;
    }
    // 6. Make the renames durable.
    let mut dirs: Vec<&PathBuf> = plans.iter().map(|p| &p.dir).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        hook(Step::SyncDir, dir).map_err(io_err(dir, "sync directory"))?;
        sync_dir(dir)?;
    }
    Ok(())
}

fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>, hook: &mut Hook<'_>) -> Result<(), FsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        hook(Step::CreateDir, &d).map_err(io_err(&d, "create directory"))?;
        let mut b = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(DIR_MODE);
        }
        b.create(&d).map_err(io_err(&d, "create directory"))?;
        created.push(d);
    }
    Ok(())
}

/// A tempfile builder for a hidden name next to `target` (`.NAME.XXXXXX.tmp`), so the final
/// rename stays within one file system.
fn builder_for<'a>(
    target: &Path,
    base: &'a mut String,
    kind: &'a str,
) -> tempfile::Builder<'a, 'a> {
    *base = format!(
        ".{}.",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut b = tempfile::Builder::new();
    b.prefix(base.as_str()).suffix(kind);
    b
}

fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// The complete contents in a temporary file created with the final mode (a key is never
/// readable by others, even for an instant), fsynced.
fn write_temp(file: &OutFile, dir: &Path, hook: &mut Hook<'_>) -> Result<TempPath, FsError> {
    let target = &file.path;
    hook(Step::CreateTemp, target).map_err(io_err(target, "create temporary file"))?;
    let mut base = String::new();
    let mut builder = builder_for(target, &mut base, ".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(file.mode()));
    }
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(io_err(target, "create temporary file"))?;
    let res = (|| {
        hook(Step::WriteTemp, target)?;
        // The umask may have narrowed the creation mode; set exactly what the file must have.
        set_mode(temp.as_file(), file.mode())?;
        temp.write_all(&file.contents)?;
        temp.as_file().sync_all()
    })();
    // On error `temp` is dropped here, which deletes it.
    res.map_err(io_err(target, "write temporary file"))?;
    Ok(temp.into_temp_path())
}

/// A second name for a file about to be replaced (a hard link, else a copy), so a failed
/// write can put it back.
fn backup(target: &Path, dir: &Path, hook: &mut Hook<'_>) -> Result<TempPath, FsError> {
    hook(Step::Backup, target).map_err(io_err(target, "back up existing file"))?;
    let meta = fs::symlink_metadata(target).map_err(io_err(target, "back up existing file"))?;
    if meta.is_dir() {
        return Err(FsError::Io {
            path: target.to_path_buf(),
            op: "replace",
            source: io::Error::other("is a directory"),
        });
    }
    let mut base = String::new();
    builder_for(target, &mut base, ".bak")
        .make_in(dir, |name| {
            fs::hard_link(target, name).or_else(|_| fs::copy(target, name).map(|_| ()))
        })
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(io_err(target, "back up existing file"))
}

fn sync_dir(dir: &Path) -> Result<(), FsError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir, "sync directory"))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Undoes a failed write: restores replaced files, removes new ones, temps, backups and the
/// directories this call created. Best effort: errors here cannot be reported better than the
/// error that caused the rollback.
fn rollback(plans: &mut [Plan<'_>], created_dirs: &[PathBuf]) {
    for plan in plans.iter_mut().rev() {
        // Dropping the temp path deletes the temporary file.
        plan.temp = None;
        if plan.committed {
            match plan.backup.take() {
                Some(b) => {
                    let _ = b.persist(&plan.file.path);
                }
                None => {
                    let _ = fs::remove_file(&plan.file.path);
                }
            }
            plan.committed = false;
        }
        plan.backup = None;
    }
    for d in created_dirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests;
