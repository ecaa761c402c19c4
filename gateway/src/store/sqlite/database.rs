//! The SQLite file, opened: in WAL mode, its schema brought up to date ([`super::schema`]), and its
//! one connection used off the worker threads, on Tokio's blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::schema;
use crate::store::{StoreError, StoreResult};

pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and brings its schema up to date.
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::Directory {
                dir: dir.to_owned(),
                error,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on Tokio's blocking pool: a slow disk, or a lock another process
    /// holds on the file, must not stall the worker threads that proxy requests (SSE included).
    pub(super) async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| StoreError::Poisoned)?;
            f(&mut conn)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use crate::config::StoreSettings;

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_named_once_with_sqlites_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let Err(error) = crate::store::open(&StoreSettings::Sqlite(path.clone())).await else {
            panic!("a file of x's opened as a database");
        };
        // As the binary prints an error at start: the chain, one line.
        let line = format!("{:#}", anyhow::Error::from(error));
        assert!(
            line.starts_with(&format!("opening the store {}: store: ", path.display())),
            "{line}"
        );
        let reason = "file is not a database";
        assert_eq!(line.matches(reason).count(), 1, "{line}");
    }
}
