//! Where `--upgrade` receives the listening sockets. Pingora makes that socket readable and
//! writable by anyone, and a new gateway binds it where it is told: in a directory others can write,
//! another user could take the path first and be handed the sockets. So the directory must be a
//! directory (not a link another user could point elsewhere), owned by this user and writable by
//! this user only; by default it is the service's runtime directory (systemd's
//! `RUNTIME_DIRECTORY`, else `XDG_RUNTIME_DIR`), else a private directory made in `/tmp`.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The socket's path: `configured`, else `mcp-auth-gateway-<port>.sock` in the default directory;
/// refused when its directory is a link, another user's, or writable by others.
pub(crate) fn resolve(configured: Option<&Path>, port: u16) -> anyhow::Result<PathBuf> {
    let path = match configured {
        Some(path) => path.to_owned(),
        None => default_dir()?.join(format!("mcp-auth-gateway-{port}.sock")),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("server.upgrade_socket: cannot read {}", dir.display()))?;
    let uid = this_user()?;
    let why = if meta.file_type().is_symlink() {
        Some("is a symbolic link, which could be pointed elsewhere")
    } else if !meta.is_dir() {
        Some("is not a directory")
    } else if meta.uid() != uid {
        Some("belongs to another user, who could take the socket's path first")
    } else if meta.mode() & 0o022 != 0 {
        Some("is writable by other users, who could be handed the listening sockets")
    } else {
        None
    };
    if let Some(why) = why {
        bail!(
            "server.upgrade_socket: {} {why}; choose a directory of this user's (uid {uid}) that \
             only it can write",
            dir.display()
        );
    }
    Ok(path)
}

/// This process's user: the owner of its /proc entry.
fn this_user() -> anyhow::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// The runtime directory, or `/tmp/mcp-auth-gateway-<uid>` made (or found) private to this user.
fn default_dir() -> anyhow::Result<PathBuf> {
    for name in ["RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"] {
        if let Some(dir) = std::env::var_os(name).filter(|d| !d.is_empty()) {
            // systemd may list several, separated by colons: the first.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            return Ok(PathBuf::from(first));
        }
    }
    let uid = this_user()?;
    let dir = PathBuf::from(format!("/tmp/mcp-auth-gateway-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("making {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        bail!(
            "{} is not a directory private to this user (uid {uid}): remove it, or set \
             server.upgrade_socket",
            dir.display()
        );
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_where_others_can_write_is_refused() {
        let error = resolve(Some(Path::new("/tmp/gateway.sock")), 8080).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/tmp is writable by other users"),
            "{error}"
        );
        let private = tempfile::tempdir().unwrap();
        let path = private.path().join("gateway.sock");
        assert_eq!(resolve(Some(&path), 8080).unwrap(), path);
        // A link to a private directory could be pointed at another's: refused.
        let link = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(private.path(), link.path().join("sockets")).unwrap();
        let error = resolve(Some(&link.path().join("sockets/gateway.sock")), 8080).unwrap_err();
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
    }

    #[test]
    fn a_directory_of_another_users_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Giving a directory away takes root (or the capability); elsewhere this cannot be set up.
        if std::os::unix::fs::chown(dir.path(), Some(65534), None).is_err() {
            eprintln!("skipped: cannot give a directory to another user without root");
            return;
        }
        let error = resolve(Some(&dir.path().join("gateway.sock")), 8080).unwrap_err();
        assert!(
            error.to_string().contains("belongs to another user"),
            "{error}"
        );
    }
}
