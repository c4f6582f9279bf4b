//! `cocaine deploy --package DIR`: the folder as an in-memory tar, the frame after the JSON.
//!
//! The archive holds what the node's store accepts (`cocaine_store`'s unpack rules), so a
//! package that would be refused there is refused here first, with the file named:
//! - regular files (content and mode; the node keeps the execute bits) and folders;
//! - symlinks whose target is relative and stays inside the package (`..` only at the start,
//!   no more of them than the link is deep), kept as symlinks, never followed;
//! - no other kind of file (fifos, sockets, devices);
//! - folders named `.git` and `__pycache__` are left out: history and bytecode caches are
//!   not part of an app, and can be large.
//!
//! The archive is deterministic: entries in byte order of their names, times, owners and
//! groups zeroed, so the same folder always gives the same bytes.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::{Builder, EntryType, Header};

/// Folders never packed.
pub const SKIPPED: [&str; 2] = [".git", "__pycache__"];

/// Why a folder cannot be packed. Paths are the ones on disk.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: not a folder")]
    NotADirectory(PathBuf),
    #[error("{path}: {kind} cannot be packed; a package holds files, folders and symlinks")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error(
        "{path} -> {target}: {reason}; a package keeps only relative symlinks that stay inside it"
    )]
    SymlinkOutside {
        path: PathBuf,
        target: PathBuf,
        reason: &'static str,
    },
    #[error("{0}: a name that is not UTF-8 cannot be packed")]
    NotUtf8(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Packs the content of `root` (not `root` itself: entries are relative to it).
pub fn pack(root: &Path) -> Result<Vec<u8>, PackageError> {
    // The root may be a symlink to a folder: the operator named it. Links inside are not
    // followed.
    let meta = fs::metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(PackageError::NotADirectory(root.to_owned()));
    }
    let mut builder = Builder::new(Vec::new());
    add_dir_content(&mut builder, root, Path::new(""))?;
    builder.into_inner().map_err(|source| PackageError::Io {
        path: root.to_owned(),
        source,
    })
}

/// Adds the entries of `dir` (on disk), named under `rel` in the archive, depth first.
fn add_dir_content(
    builder: &mut Builder<Vec<u8>>,
    dir: &Path,
    rel: &Path,
) -> Result<(), PackageError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_error(dir))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_error(dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if name.to_str().is_none() {
            // Tar names are bytes, but the store and manifests speak UTF-8 paths.
            return Err(PackageError::NotUtf8(path));
        }
        let entry_rel = rel.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let kind = meta.file_type();
        let mut header = Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(meta.permissions().mode() & 0o777);
        let add = |b: &mut Builder<Vec<u8>>, h: &mut Header, data: &[u8]| {
            b.append_data(h, &entry_rel, data).map_err(io_error(&path))
        };
        if kind.is_dir() {
            if SKIPPED.iter().any(|s| name == *s) {
                continue;
            }
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            add(builder, &mut header, &[])?;
            add_dir_content(builder, &path, &entry_rel)?;
        } else if kind.is_file() {
            let data = fs::read(&path).map_err(io_error(&path))?;
            header.set_entry_type(EntryType::Regular);
            header.set_size(data.len() as u64);
            add(builder, &mut header, &data)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(io_error(&path))?;
            let depth = entry_rel.components().count() - 1;
            check_symlink(&target, depth).map_err(|reason| PackageError::SymlinkOutside {
                path: path.clone(),
                target: target.clone(),
                reason,
            })?;
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &entry_rel, &target)
                .map_err(io_error(&path))?;
        } else {
            let kind = if kind.is_fifo() {
                "a fifo"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device"
            } else {
                "a special file"
            };
            return Err(PackageError::Unsupported { path, kind });
        }
    }
    Ok(())
}

/// The store's rule for a symlink `depth` folders below the package root: a relative target
/// whose `..` components all come first, at most `depth` of them. Lexical, as the store's.
fn check_symlink(target: &Path, depth: usize) -> Result<(), &'static str> {
    if target.as_os_str().is_empty() {
        return Err("an empty target");
    }
    let mut ups = 0;
    let mut seen_name = false;
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err("an absolute target"),
            Component::ParentDir if seen_name => return Err("'..' after a name in the target"),
            Component::ParentDir => ups += 1,
            Component::CurDir => {}
            Component::Normal(_) => seen_name = true,
        }
    }
    if ups > depth {
        return Err("it points outside the package");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// What an archive holds, in order: (path, kind, mode, content or link target).
    fn entries(archive: &[u8]) -> Vec<(String, EntryType, u32, Vec<u8>)> {
        let mut ar = tar::Archive::new(archive);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                // Folders may or may not end with '/' (long names do): compare without it.
                let path = e
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_owned();
                let kind = e.header().entry_type();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                if kind == EntryType::Symlink {
                    data = e
                        .link_name()
                        .unwrap()
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes()
                        .to_vec();
                } else {
                    e.read_to_end(&mut data).unwrap();
                }
                (path, kind, mode, data)
            })
            .collect()
    }

    fn write(path: &Path, content: &[u8], mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn files_folders_modes_and_inner_symlinks_survive_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("app.py"), b"print('hi')\n", 0o755);
        write(&root.join("lib/util.py"), b"X = 1\n", 0o644);
        let long = "a-rather-long-folder-name-".repeat(5);
        write(&root.join(&long).join("data.bin"), &[0, 1, 2, 255], 0o600);
        fs::create_dir(root.join("empty")).unwrap();
        symlink("app.py", root.join("main")).unwrap();
        symlink("../app.py", root.join("lib/up")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        write(&root.join(".git/HEAD"), b"ref", 0o644);
        write(&root.join("lib/__pycache__/util.pyc"), b"\0", 0o644);

        let archive = pack(root).unwrap();
        let found = entries(&archive);
        let names: Vec<&str> = found.iter().map(|e| e.0.as_str()).collect();
        let long_dir = long.trim_end_matches('/');
        let long_file = format!("{long}/data.bin");
        assert_eq!(
            names,
            [
                long_dir,
                long_file.as_str(),
                "app.py",
                "dangling",
                "empty",
                "lib",
                "lib/up",
                "lib/util.py",
                "main",
            ]
        );
        let get = |name: &str| found.iter().find(|e| e.0 == name).unwrap();
        assert_eq!(get("app.py").1, EntryType::Regular);
        assert_eq!(get("app.py").2, 0o755);
        assert_eq!(get("app.py").3, b"print('hi')\n");
        assert_eq!(get("lib/util.py").2, 0o644);
        assert_eq!(get(&long_file).3, [0, 1, 2, 255]);
        assert_eq!(get(&long_file).2, 0o600);
        assert_eq!(get("empty").1, EntryType::Directory);
        assert_eq!(get("main").1, EntryType::Symlink);
        assert_eq!(get("main").3, b"app.py");
        assert_eq!(get("lib/up").3, b"../app.py");

        // Unpacked by the tar crate, the tree reads back the same.
        let out = tempfile::tempdir().unwrap();
        tar::Archive::new(&archive[..]).unpack(out.path()).unwrap();
        let back = out.path();
        assert_eq!(fs::read(back.join("lib/util.py")).unwrap(), b"X = 1\n");
        let mode = fs::metadata(back.join("app.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(back.join("lib/up")).unwrap(),
            Path::new("../app.py")
        );
        assert_eq!(fs::read(back.join("main")).unwrap(), b"print('hi')\n");
        assert!(back.join("empty").is_dir());
        assert!(!back.join(".git").exists());
        assert!(!back.join("lib/__pycache__").exists());

        // The same folder gives the same bytes.
        assert_eq!(pack(root).unwrap(), archive);
    }

    #[test]
    fn the_node_store_unpacks_what_was_packed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        write(&root.join("bin/run"), b"#!/bin/sh\n", 0o755);
        write(&root.join("conf/app.conf"), b"x=1\n", 0o644);
        symlink("../bin/run", root.join("conf/run")).unwrap();
        let archive = pack(&root).unwrap();

        let store = cocaine_store::Store::open(&dir.path().join("store")).unwrap();
        let package = store
            .put_app("app", b"{}", Some(&archive))
            .unwrap()
            .package_dir
            .unwrap();
        assert_eq!(fs::read(package.join("conf/app.conf")).unwrap(), b"x=1\n");
        let mode = fs::metadata(package.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(fs::read(package.join("conf/run")).unwrap(), b"#!/bin/sh\n");
        assert!(fs::symlink_metadata(package.join("conf/run"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn symlinks_out_of_the_package_are_refused() {
        for (at, target, why) in [
            ("escape", "../outside", "outside the package"),
            ("sub/escape", "../../outside", "outside the package"),
            ("abs", "/etc/passwd", "absolute"),
            ("sub/twisty", "x/../../y", "'..' after a name"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            fs::create_dir(root.join("sub")).unwrap();
            symlink(target, root.join(at)).unwrap();
            let err = pack(root).unwrap_err();
            assert!(
                matches!(&err, PackageError::SymlinkOutside { path, .. } if path == &root.join(at)),
                "{at}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(why), "{text}");
            assert!(text.contains(target), "{text}");
        }
    }

    #[test]
    fn a_symlink_to_a_folder_outside_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        write(&outside.path().join("secret"), b"s", 0o644);
        let dir = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("link")).unwrap();
        assert!(matches!(
            pack(dir.path()),
            Err(PackageError::SymlinkOutside { .. })
        ));
    }

    #[test]
    fn special_files_and_non_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = pack(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a fifo cannot be packed"), "{err}");

        write(&dir.path().join("file"), b"", 0o644);
        assert!(matches!(
            pack(&dir.path().join("file")),
            Err(PackageError::NotADirectory(_))
        ));
        assert!(matches!(
            pack(&dir.path().join("nothing")),
            Err(PackageError::Io { .. })
        ));
    }
}
