//! Unpacking a package tar into a fresh directory, refusing every entry that could write
//! outside it.
//!
//! The rules: an entry's path has only plain components (no leading `/`, no `..`); no entry
//! is ever written through a symlink (every parent on disk must be a real directory, and an
//! existing file, link or symlink at the entry's own path is removed, never opened); a
//! symlink's target is relative, its `..` components come only first and do not climb above
//! the package root; a hard link names a regular file already in the package; devices,
//! fifos and other types are refused. Files keep their execute bits and nothing else
//! (no setuid, no group or world write).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::StoreError;

/// Unpacks `archive` into `root`, an existing empty directory. Every file written and every
/// directory created is fsynced (`root` itself is the caller's).
pub fn unpack(archive: &[u8], root: &Path) -> Result<(), StoreError> {
    let mut created = Vec::new();
    let archive_err = |source: io::Error| StoreError::Archive {
        path: root.to_owned(),
        source,
    };
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        let raw = entry.path().map_err(archive_err)?.into_owned();
        let refuse = |reason: String| StoreError::UnsafeEntry {
            path: root.to_owned(),
            entry: raw.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        let rel = plain_path(&raw).map_err(|r| refuse(r.into()))?;
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(refuse(
                "an entry that is not a directory names the package root".into(),
            ));
        }
        let dest = root.join(&rel);
        make_parents(root, &rel, &mut created).map_err(refuse)?;
        match kind {
            EntryType::Directory => match fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_existing(&dest).map_err(refuse)?;
                    mkdir(&dest, &mut created)?;
                }
                Err(_) => mkdir(&dest, &mut created)?,
            },
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&dest).map_err(refuse)?;
                let mode = 0o644 | (entry.header().mode().unwrap_or(0o644) & 0o111);
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&dest)
                    .map_err(StoreError::io("create", &dest))?;
                io::copy(&mut entry, &mut file).map_err(archive_err)?;
                file.sync_all().map_err(StoreError::io("fsync", &dest))?;
            }
            EntryType::Symlink => {
                let target = link_name(&entry).map_err(refuse)?;
                let depth = rel.components().count() - 1;
                check_symlink_target(&target, depth).map_err(|r| refuse(r.into()))?;
                remove_existing(&dest).map_err(refuse)?;
                std::os::unix::fs::symlink(&target, &dest)
                    .map_err(StoreError::io("symlink", &dest))?;
            }
            EntryType::Link => {
                let target = link_name(&entry).map_err(refuse)?;
                let target_rel = plain_path(&target)
                    .map_err(|r| refuse(format!("hard link target {}: {r}", target.display())))?;
                if target_rel.as_os_str().is_empty() {
                    return Err(refuse("a hard link to the package root".into()));
                }
                real_parents(root, &target_rel).map_err(refuse)?;
                let source = root.join(&target_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(refuse(format!(
                            "hard link target {} is not a regular file already in the package",
                            target.display()
                        )))
                    }
                }
                if source == dest {
                    continue;
                }
                remove_existing(&dest).map_err(refuse)?;
                fs::hard_link(&source, &dest).map_err(StoreError::io("link", &dest))?;
            }
            other => return Err(refuse(format!("entry type {other:?} is not allowed"))),
        }
    }
    created
        .iter()
        .try_for_each(|dir| crate::atomic::sync_dir(dir))
}

/// The entry's path with `.` dropped, or why it is refused.
fn plain_path(raw: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("a '..' component"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    Ok(out)
}

fn link_name(entry: &tar::Entry<'_, &[u8]>) -> Result<PathBuf, String> {
    match entry.link_name() {
        Ok(Some(t)) => Ok(t.into_owned()),
        Ok(None) => Err("a link without a target".into()),
        Err(e) => Err(format!("unreadable link target: {e}")),
    }
}

/// A symlink at depth `depth` (0 = directly in the package root) may point to `target` only
/// if it is relative, its `..` components all come first and there are at most `depth` of
/// them. Since every directory on the way is real (never a symlink), the lexical answer is
/// the kernel's.
fn check_symlink_target(target: &Path, depth: usize) -> Result<(), &'static str> {
    if target.as_os_str().is_empty() {
        return Err("a symlink with an empty target");
    }
    let mut ups = 0;
    let mut seen_name = false;
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err("a symlink to an absolute path")
            }
            Component::ParentDir if seen_name => {
                return Err("a symlink target with '..' after a name")
            }
            Component::ParentDir => ups += 1,
            Component::CurDir => {}
            Component::Normal(_) => seen_name = true,
        }
    }
    if ups > depth {
        return Err("a symlink pointing outside the package");
    }
    Ok(())
}

/// Creates the parents of `rel` under `root` as real directories; refuses if one of them
/// exists as anything else (a symlink above all).
fn make_parents(root: &Path, rel: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut dir = root.to_owned();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("{} is not a real directory", dir.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
                created.push(dir.clone());
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Ok(())
}

/// Checks that every parent of `rel` under `root` exists as a real directory.
fn real_parents(root: &Path, rel: &Path) -> Result<(), String> {
    let mut dir = root.to_owned();
    for c in rel.parent().into_iter().flat_map(Path::components) {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            _ => return Err(format!("{} is not a real directory", dir.display())),
        }
    }
    Ok(())
}

/// Removes whatever non-directory is at `path`, so it is created anew and never written
/// through. A directory there is refused.
fn remove_existing(path: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(format!("{} is already a directory", path.display())),
        Ok(_) => fs::remove_file(path).map_err(|e| format!("remove {}: {e}", path.display())),
        Err(_) => Ok(()),
    }
}

fn mkdir(path: &Path, created: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    fs::create_dir(path).map_err(StoreError::io("create directory", path))?;
    created.push(path.to_owned());
    Ok(())
}
