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
