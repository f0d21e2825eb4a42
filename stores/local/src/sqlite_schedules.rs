//! Schedules in the SQLite registry database (`<data>/registry.db`, table
//! `schedules`, created if missing so older data directories gain it). Its own
//! connection, with the registry's discipline: WAL, a busy timeout, and
//! `BEGIN IMMEDIATE` around the count-then-insert of `create`, so two processes
//! can never push an install past its limit.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use runtime_core::schedule::{MAX_PER_INSTALL, Schedule};
use runtime_core::store::StoreError;
use runtime_core::store::schedules::{ScheduleStore, ScheduleStoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schedules (
    tenant     TEXT NOT NULL,
    install_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant, install_id, id)
);
CREATE INDEX IF NOT EXISTS schedules_enabled ON schedules (enabled);
";

/// A [`ScheduleStore`] in the registry's SQLite file.
#[derive(Clone)]
pub struct SqliteScheduleStore {
    conn: Arc<Mutex<Connection>>,
}

fn db_err(e: rusqlite::Error) -> ScheduleStoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string()).into()
        }
        _ => StoreError::Internal(e.to_string()).into(),
    }
}

fn decode(doc: &str) -> Result<Schedule, ScheduleStoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Internal(format!("stored schedule: {e}")).into())
}

fn encode(s: &Schedule) -> String {
    serde_json::to_string(s).expect("a schedule serializes")
}

fn query(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Schedule>, ScheduleStoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let docs = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    docs.iter().map(|d| decode(d)).collect()
}

impl SqliteScheduleStore {
    /// Opens the registry database at `path` (creating the table if needed).
    pub fn open(path: &Path) -> Result<Self, ScheduleStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteScheduleStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ScheduleStoreError> + Send + 'static,
    ) -> Result<T, ScheduleStoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

#[async_trait]
impl ScheduleStore for SqliteScheduleStore {
    async fn create(&self, s: &Schedule) -> Result<(), ScheduleStoreError> {
        let s = s.clone();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let (count, exists): (i64, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(id = ?3), 0) FROM schedules
                     WHERE tenant = ?1 AND install_id = ?2",
                    params![s.tenant, s.install_id, s.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_err)?;
            if exists > 0 {
                return Err(ScheduleStoreError::Exists(s.id.clone()));
            }
            if count as usize >= MAX_PER_INSTALL {
                return Err(ScheduleStoreError::QuotaExceeded);
            }
            tx.execute(
                "INSERT INTO schedules (tenant, install_id, id, enabled, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.tenant, s.install_id, s.id, s.enabled as i64, encode(&s)],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError> {
        let (t, i, id) = (tenant.to_string(), install_id.to_string(), id.to_string());
        self.with(move |conn| {
            conn.query_row(
                "SELECT doc FROM schedules WHERE tenant = ?1 AND install_id = ?2 AND id = ?3",
                params![t, i, id],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db_err)?
            .map(|d| decode(&d))
            .transpose()
        })
        .await
    }

    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let (t, i) = (tenant.to_string(), install_id.to_string());
        self.with(move |conn| {
            query(
                conn,
                "SELECT doc FROM schedules WHERE tenant = ?1 AND install_id = ?2 ORDER BY id",
                &[&t, &i],
            )
        })
        .await
    }

    async fn update(&self, s: &Schedule) -> Result<(), ScheduleStoreError> {
        let s = s.clone();
        self.with(move |conn| {
            let n = conn
                .execute(
                    "UPDATE schedules SET enabled = ?4, doc = ?5
                     WHERE tenant = ?1 AND install_id = ?2 AND id = ?3",
                    params![s.tenant, s.install_id, s.id, s.enabled as i64, encode(&s)],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(ScheduleStoreError::NotFound(s.id.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError> {
        let (t, i, id) = (tenant.to_string(), install_id.to_string(), id.to_string());
        self.with(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM schedules WHERE tenant = ?1 AND install_id = ?2 AND id = ?3",
                    params![t, i, id],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(ScheduleStoreError::NotFound(id));
            }
            Ok(())
        })
        .await
    }

    async fn delete_install(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let (t, i) = (tenant.to_string(), install_id.to_string());
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let gone = query(
                &tx,
                "SELECT doc FROM schedules WHERE tenant = ?1 AND install_id = ?2 ORDER BY id",
                &[&t, &i],
            )?;
            tx.execute(
                "DELETE FROM schedules WHERE tenant = ?1 AND install_id = ?2",
                params![t, i],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(gone)
        })
        .await
    }

    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError> {
        self.with(|conn| {
            query(
                conn,
                "SELECT doc FROM schedules WHERE enabled = 1 ORDER BY tenant, install_id, id",
                &[],
            )
        })
        .await
    }
}
