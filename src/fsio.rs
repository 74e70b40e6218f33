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
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
    temp: Option<PathBuf>,
    backup: Option<PathBuf>,
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
            for p in &mut plans {
                if let Some(b) = p.backup.take() {
                    let _ = fs::remove_file(b);
                }
            }
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
        let temp = plan.temp.clone().ok_or_else(|| FsError::NotAFile {
            path: target.clone(),
        })?;
        hook(Step::Commit, &target).map_err(io_err(&target, "rename into place"))?;
        if plan.existed {
            fs::rename(&temp, &target).map_err(io_err(&target, "rename into place"))?;
        } else {
            commit_new(&temp, &target)?;
        }
        plan.temp = None;
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

/// Moves a temp file to a name that must not exist: a hard link fails if the name appeared
/// since the check, so a concurrent writer is never clobbered. Falls back to a checked rename
/// on file systems without hard links.
fn commit_new(temp: &Path, target: &Path) -> Result<(), FsError> {
    match fs::hard_link(temp, target) {
        Ok(()) => {
            // The target is in place; the temp name is only an extra link now.
            let _ = fs::remove_file(temp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(FsError::Exists {
            path: target.to_path_buf(),
        }),
        Err(_) => {
            if fs::symlink_metadata(target).is_ok() {
                return Err(FsError::Exists {
                    path: target.to_path_buf(),
                });
            }
            fs::rename(temp, target).map_err(io_err(target, "rename into place"))
        }
    }
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

fn unique_name(dir: &Path, target: &Path, kind: &str) -> PathBuf {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 8];
    // If the system RNG fails, the process id and the create_new retry keep names unique.
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    let suffix: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{base}.{kind}-{}-{suffix}", std::process::id()))
}

fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    o.open(path)
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

fn write_temp(file: &OutFile, dir: &Path, hook: &mut Hook<'_>) -> Result<PathBuf, FsError> {
    let target = &file.path;
    hook(Step::CreateTemp, target).map_err(io_err(target, "create temporary file"))?;
    let mut attempt = 0;
    let (temp, mut f) = loop {
        let temp = unique_name(dir, target, "tmp");
        match open_new(&temp, file.mode()) {
            Ok(f) => break (temp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(io_err(target, "create temporary file")(e)),
        }
    };
    let res = (|| {
        hook(Step::WriteTemp, target)?;
        // The umask may have narrowed the creation mode; set exactly what the file must have.
        set_mode(&f, file.mode())?;
        f.write_all(&file.contents)?;
        f.sync_all()
    })();
    match res {
        Ok(()) => Ok(temp),
        Err(e) => {
            drop(f);
            let _ = fs::remove_file(&temp);
            Err(io_err(target, "write temporary file")(e))
        }
    }
}

fn backup(target: &Path, dir: &Path, hook: &mut Hook<'_>) -> Result<PathBuf, FsError> {
    hook(Step::Backup, target).map_err(io_err(target, "back up existing file"))?;
    let meta = fs::symlink_metadata(target).map_err(io_err(target, "back up existing file"))?;
    if meta.is_dir() {
        return Err(FsError::Io {
            path: target.to_path_buf(),
            op: "replace",
            source: io::Error::other("is a directory"),
        });
    }
    let b = unique_name(dir, target, "bak");
    if fs::hard_link(target, &b).is_ok() {
        return Ok(b);
    }
    fs::copy(target, &b)
        .map(|_| b)
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
        if let Some(t) = plan.temp.take() {
            let _ = fs::remove_file(t);
        }
        if plan.committed {
            match plan.backup.take() {
                Some(b) => {
                    let _ = fs::rename(&b, &plan.file.path);
                }
                None => {
                    let _ = fs::remove_file(&plan.file.path);
                }
            }
            plan.committed = false;
        }
        if let Some(b) = plan.backup.take() {
            let _ = fs::remove_file(b);
        }
    }
    for d in created_dirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every entry under `dir` with its bytes and mode: the whole observable state.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let m = fs::symlink_metadata(&p).unwrap();
                #[cfg(unix)]
                let mode = {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o7777
                };
                #[cfg(not(unix))]
                let mode = 0;
                if m.is_dir() {
                    out.insert(p.clone(), (b"<dir>".to_vec(), mode));
                    stack.push(p);
                } else {
                    out.insert(p.clone(), (fs::read(&p).unwrap(), mode));
                }
            }
        }
        out
    }

    fn three(dir: &Path) -> Vec<OutFile> {
        vec![
            OutFile::public(dir.join("a/root-cert.pem"), b"cert A\n".to_vec()),
            OutFile::secret(
                dir.join("a/ca-key.pem"),
                Zeroizing::new(b"secret key\n".to_vec()),
            ),
            OutFile::public(dir.join("b/c/chain.pem"), b"chain\n".to_vec()),
        ]
    }

    #[cfg(unix)]
    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_everything_with_exact_modes() {
        let t = tempfile::tempdir().unwrap();
        let files = three(t.path());
        let w = write_all(&files, false).unwrap();
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|w| !w.replaced));
        for f in &files {
            assert_eq!(fs::read(f.path()).unwrap(), f.contents());
            #[cfg(unix)]
            assert_eq!(mode_of(f.path()), f.mode(), "{}", f.path().display());
        }
        // Nothing but the three files and two created directory levels.
        let snap = snapshot(t.path());
        assert_eq!(snap.len(), 3 + 3, "{:?}", snap.keys().collect::<Vec<_>>());
    }

    #[test]
    fn refuses_existing_without_force_and_changes_nothing() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        fs::write(t.path().join("a/ca-key.pem"), b"old").unwrap();
        let before = snapshot(t.path());
        let e = write_all(&three(t.path()), false).unwrap_err();
        assert!(matches!(e, FsError::Exists { .. }), "{e}");
        assert_eq!(e.path(), t.path().join("a/ca-key.pem"));
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn force_replaces_and_reports_it() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        fs::write(t.path().join("a/ca-key.pem"), b"old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // A world-readable old key: the new one must still be 0600.
            fs::set_permissions(
                t.path().join("a/ca-key.pem"),
                fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let w = write_all(&three(t.path()), true).unwrap();
        assert_eq!(
            w.iter().map(|w| w.replaced).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(
            fs::read(t.path().join("a/ca-key.pem")).unwrap(),
            b"secret key\n"
        );
        #[cfg(unix)]
        assert_eq!(mode_of(&t.path().join("a/ca-key.pem")), 0o600);
        // No backup or temp left behind.
        assert_eq!(snapshot(t.path()).len(), 6);
    }

    #[test]
    fn duplicate_and_non_file_paths_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = OutFile::public(t.path().join("x"), vec![]);
        assert!(matches!(
            write_all(&[f.clone(), f], false),
            Err(FsError::Duplicate { .. })
        ));
        assert!(matches!(
            write_all(&[OutFile::public("/", vec![])], true),
            Err(FsError::NotAFile { .. })
        ));
        assert!(fs::read_dir(t.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_directory_in_the_way_fails_the_commit_and_restores_everything() {
        // A real failure in the middle of a forced write: the second target is a directory,
        // found after the first file's temp and backup were made.
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a/ca-key.pem")).unwrap();
        fs::write(t.path().join("a/root-cert.pem"), b"old root").unwrap();
        let before = snapshot(t.path());
        let e = write_all(&three(t.path()), true).unwrap_err();
        assert!(matches!(e, FsError::Io { .. }), "{e}");
        assert_eq!(snapshot(t.path()), before);
    }

    #[test]
    fn a_file_where_a_directory_must_go_fails_cleanly() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("b"), b"i am a file").unwrap();
        let before = snapshot(t.path());
        let e = write_all(&three(t.path()), false).unwrap_err();
        assert!(matches!(e, FsError::Io { .. }), "{e}");
        assert_eq!(snapshot(t.path()), before);
    }

    /// Injects a failure at every step of the write, in turn, with and without existing
    /// files: the directory must always be left exactly as it was.
    #[test]
    fn failure_at_any_step_leaves_nothing() {
        for force in [false, true] {
            for n in 0.. {
                let t = tempfile::tempdir().unwrap();
                if force {
                    fs::create_dir(t.path().join("a")).unwrap();
                    fs::write(t.path().join("a/ca-key.pem"), b"old key").unwrap();
                }
                let before = snapshot(t.path());
                let mut calls = 0;
                let mut steps = Vec::new();
                let res = write_all_with(&three(t.path()), force, &mut |step, _| {
                    calls += 1;
                    steps.push(step);
                    if calls == n + 1 {
                        Err(io::Error::other("injected"))
                    } else {
                        Ok(())
                    }
                });
                match res {
                    Err(e) => {
                        assert!(e.to_string().contains("injected"), "{e}");
                        assert_eq!(
                            snapshot(t.path()),
                            before,
                            "force={force}, failed at step {n} ({:?})",
                            steps.last()
                        );
                    }
                    Ok(_) => {
                        // Past the last step: every step was tried once.
                        assert!(n > 5, "only {n} steps");
                        assert!(steps.contains(&Step::Commit));
                        assert!(steps.contains(&Step::SyncDir));
                        assert_eq!(steps.contains(&Step::Backup), force);
                        break;
                    }
                }
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn secret_temp_file_is_never_wider_than_0600() {
        // Observe the temp file at the moment its bytes are written.
        let t = tempfile::tempdir().unwrap();
        let f = OutFile::secret(t.path().join("k.pem"), Zeroizing::new(b"k".to_vec()));
        let dir = t.path().to_path_buf();
        let mut seen = Vec::new();
        write_all_with(std::slice::from_ref(&f), false, &mut |step, _| {
            if step == Step::WriteTemp {
                for e in fs::read_dir(&dir).unwrap() {
                    seen.push(mode_of(&e.unwrap().path()));
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0] & 0o077, 0, "temp mode {:o}", seen[0]);
        assert_eq!(mode_of(f.path()), 0o600);
    }

    #[test]
    fn debug_hides_contents() {
        let f = OutFile::secret("k.pem", Zeroizing::new(b"TOPSECRET".to_vec()));
        let d = format!("{f:?}");
        assert!(!d.contains("TOPSECRET"), "{d}");
        assert!(d.contains("600"), "{d}");
    }
}
