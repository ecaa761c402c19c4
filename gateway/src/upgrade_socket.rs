//! Where `--upgrade` receives the listening sockets. Pingora makes that socket readable and
//! writable by anyone, and a new gateway binds it where it is told: in a directory others can write,
//! another user could take the path first and be handed the sockets. So the directory must be
//! writable by this user only; by default it is the service's runtime directory (systemd's
//! `RUNTIME_DIRECTORY`, else `XDG_RUNTIME_DIR`), else a private directory made in `/tmp`.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The socket's path: `configured`, else `mcp-auth-gateway-<port>.sock` in the default directory;
/// refused when its directory is writable by others.
pub fn resolve(configured: Option<&Path>, port: u16) -> anyhow::Result<PathBuf> {
    let path = match configured {
        Some(path) => path.to_owned(),
        None => default_dir()?.join(format!("mcp-auth-gateway-{port}.sock")),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("server.upgrade_socket: cannot read {}", dir.display()))?;
    if meta.mode() & 0o022 != 0 {
        bail!(
            "server.upgrade_socket: {} is writable by other users, who could be handed the \
             listening sockets; choose a directory only this user can write",
            dir.display()
        );
    }
    Ok(path)
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
    // This process's user: the owner of its /proc entry.
    let uid = std::fs::metadata("/proc/self")?.uid();
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
    }
}
