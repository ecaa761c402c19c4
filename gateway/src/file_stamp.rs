//! Noticing that a file changed without reading it: its modification time, length and inode, from
//! a `stat` that follows symlinks (certbot's `live/` links, a config deployed by swapping a link).

use std::path::Path;
use std::time::SystemTime;

/// A version of a file; `None` while it cannot be read.
pub(crate) type Stamp = Option<(SystemTime, u64, u64)>;

pub(crate) fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}
