//! Finds the workspace's binaries, building them once per test process.
//!
//! `CARGO_BIN_EXE_*` exists only for binaries of the test's own package, so the harness runs
//! `cargo build` for the others; cargo's own lock makes concurrent test processes safe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_relative() {
                workspace_root().join(d)
            } else {
                d
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The path of a workspace binary (`mcp-backend`, `mcp-auth-gateway`), built in the debug profile.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "mcp-backend",
                "-p",
                "mcp-auth-gateway",
                "--bins",
            ])
            .status()
            .expect("cargo can be run");
        assert!(status.success(), "building the workspace binaries failed");
    });
    let path = target_dir().join("debug").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}
