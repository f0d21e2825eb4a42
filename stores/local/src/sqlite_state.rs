//! Guest storage, quota counters, idempotency records and execution records in
//! SQLite (`<data>/state.db`, beside the registry): they survive restarts of
//! `alga-lambda up`, and several processes may share the file (WAL journal, busy
//! timeout, `BEGIN IMMEDIATE` around every read-modify-write). Lapsed rows are
//! ignored on read and purged now and then.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use runtime_core::store::StoreError;
use runtime_core::store::executions::{ExecutionLog, ExecutionRecord};
use runtime_core::store::idempotency::{Claim, IdempotencyStore};
use runtime_core::store::kv::{self, KvEntry, KvError, KvLimits, KvPage, KvScope, KvStore};
use runtime_core::store::quota::{QuotaCharge, QuotaDecision, QuotaKey, QuotaStore};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    tenant     TEXT NOT NULL,
    install_id TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (tenant, install_id, namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quotas (
    tenant       TEXT NOT NULL,
    extension    TEXT NOT NULL,
    window       TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used         INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, extension, window, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    state      TEXT NOT NULL,
    response   BLOB,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executions (
    tenant        TEXT NOT NULL,
    extension     TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    request_id    TEXT NOT NULL,
    install_id    TEXT,
    version       TEXT,
    content_hash  TEXT,
    duration_ms   INTEGER NOT NULL,
    status        INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    error         TEXT,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant, extension, started_at_ms, request_id)
) WITHOUT ROWID;
";

/// Writes between two purges of lapsed rows.
const PURGE_EVERY: u64 = 1000;

/// The SQLite state store; one value serves all four traits.
#[derive(Clone)]
pub struct SqliteStateStore {
    conn: Arc<Mutex<Connection>>,
    limits: KvLimits,
    writes: Arc<AtomicU64>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        e => StoreError::Internal(e.to_string()),
    }
}

impl SqliteStateStore {
    /// Opens (creating if needed) the database at `path` with the default limits.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_limits(path, KvLimits::default())
    }

    /// Opens the database with custom key-value limits.
    pub fn open_with_limits(path: &Path, limits: KvLimits) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(SqliteStateStore {
            conn: Arc::new(Mutex::new(conn)),
            limits,
            writes: Arc::default(),
        })
    }

    /// Runs `f` on the connection off the async threads.
    async fn with<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(|e| E::from(StoreError::Internal(e.to_string())))?
    }

    /// Every `PURGE_EVERY` writes, drops lapsed rows.
    fn maybe_purge(&self, conn: &Connection) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY != PURGE_EVERY - 1 {
            return;
        }
        let now = runtime_core::clock::unix_millis();
        // Best effort: a failed purge only leaves rows that reads already ignore.
        let _ = conn.execute(
            "DELETE FROM quotas WHERE expires_at < ?1",
            params![(now / 1000) as i64],
        );
        let _ = conn.execute(
            "DELETE FROM idempotency WHERE expires_ms < ?1",
            params![now as i64],
        );
        let _ = conn.execute(
            "DELETE FROM executions WHERE expires_at < ?1",
            params![(now / 1000) as i64],
        );
    }
}

fn sql_kv(e: rusqlite::Error) -> KvError {
    KvError::Store(db_err(e))
}

#[async_trait]
impl KvStore for SqliteStateStore {
    async fn get(&self, scope: &KvScope, ns: &str, key: &str) -> Result<Option<KvEntry>, KvError> {
        let (s, ns, key) = (scope.clone(), ns.to_string(), key.to_string());
        self.with(move |conn| {
            conn.query_row(
                "SELECT value, revision FROM kv
                 WHERE tenant = ?1 AND install_id = ?2 AND namespace = ?3 AND key = ?4",
                params![s.tenant, s.install_id, ns, key],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(sql_kv)
            .map(|row| {
                row.map(|(value, revision)| KvEntry {
                    namespace: ns,
                    key,
                    value,
                    revision: revision as u64,
                })
            })
        })
        .await
    }

    async fn put(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<KvEntry, KvError> {
        kv::validate_namespace(&self.limits, ns)?;
        kv::validate_key(&self.limits, key)?;
        kv::validate_value(&self.limits, value)?;
        let (s, ns, key, value) = (
            scope.clone(),
            ns.to_string(),
            key.to_string(),
            value.to_vec(),
        );
        let limits = self.limits;
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_kv)?;
            let current: u64 = tx
                .query_row(
                    "SELECT revision FROM kv
                     WHERE tenant = ?1 AND install_id = ?2 AND namespace = ?3 AND key = ?4",
                    params![s.tenant, s.install_id, ns, key],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(sql_kv)?
                .unwrap_or(0) as u64;
            if let Some(want) = expected
                && want != current
            {
                return Err(KvError::Conflict);
            }
            if current == 0 {
                let keys: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM kv
                         WHERE tenant = ?1 AND install_id = ?2 AND namespace = ?3",
                        params![s.tenant, s.install_id, ns],
                        |r| r.get(0),
                    )
                    .map_err(sql_kv)?;
                if keys == 0 {
                    let namespaces: i64 = tx
                        .query_row(
                            "SELECT COUNT(DISTINCT namespace) FROM kv
                             WHERE tenant = ?1 AND install_id = ?2",
                            params![s.tenant, s.install_id],
                            |r| r.get(0),
                        )
                        .map_err(sql_kv)?;
                    if namespaces as usize >= limits.namespaces_per_install {
                        return Err(KvError::LimitReached(format!(
                            "at most {} namespaces per install",
                            limits.namespaces_per_install
                        )));
                    }
                }
                if keys as usize >= limits.keys_per_namespace {
                    return Err(KvError::LimitReached(format!(
                        "at most {} keys per namespace",
                        limits.keys_per_namespace
                    )));
                }
            }
            let revision = current + 1;
            tx.execute(
                "INSERT INTO kv (tenant, install_id, namespace, key, value, revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, install_id, namespace, key)
                 DO UPDATE SET value = excluded.value, revision = excluded.revision",
                params![s.tenant, s.install_id, ns, key, value, revision as i64],
            )
            .map_err(sql_kv)?;
            tx.commit().map_err(sql_kv)?;
            Ok(KvEntry {
                namespace: ns,
                key,
                value,
                revision,
            })
        })
        .await
    }

    async fn delete(&self, scope: &KvScope, ns: &str, key: &str) -> Result<(), KvError> {
        let (s, ns, key) = (scope.clone(), ns.to_string(), key.to_string());
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM kv
                 WHERE tenant = ?1 AND install_id = ?2 AND namespace = ?3 AND key = ?4",
                params![s.tenant, s.install_id, ns, key],
            )
            .map_err(sql_kv)?;
            Ok(())
        })
        .await
    }

    async fn list(
        &self,
        scope: &KvScope,
        ns: &str,
        after: Option<&str>,
    ) -> Result<KvPage, KvError> {
        let (s, ns) = (scope.clone(), ns.to_string());
        let after = after.unwrap_or("").to_string();
        let page = self.limits.page_size;
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, value, revision FROM kv
                     WHERE tenant = ?1 AND install_id = ?2 AND namespace = ?3 AND key > ?4
                     ORDER BY key LIMIT ?5",
                )
                .map_err(sql_kv)?;
            let rows = stmt
                .query_map(
                    params![s.tenant, s.install_id, ns, after, (page + 1) as i64],
                    |r| {
                        Ok(KvEntry {
                            namespace: ns.clone(),
                            key: r.get(0)?,
                            value: r.get(1)?,
                            revision: r.get::<_, i64>(2)? as u64,
                        })
                    },
                )
                .map_err(sql_kv)?;
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(sql_kv)?;
            let more = entries.len() > page;
            entries.truncate(page);
            Ok(KvPage { entries, more })
        })
        .await
    }

    fn limits(&self) -> KvLimits {
        self.limits
    }
}

/// Adds one to a quota counter unless it has reached `limit`, in one statement
/// (the check and the increment are atomic); `None` when it has.
fn charge_in(conn: &Connection, k: &QuotaKey, limit: u64) -> Result<Option<u64>, StoreError> {
    let used: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO quotas (tenant, extension, window, window_start, used, expires_at)
             SELECT ?1, ?2, ?3, ?4, 1, ?5 WHERE ?6 > 0
             ON CONFLICT (tenant, extension, window, window_start)
             DO UPDATE SET used = used + 1 WHERE used < ?6
             RETURNING used",
        )
        .map_err(db_err)?
        .query_row(
            params![
                k.tenant,
                k.extension,
                k.window.name(),
                k.window_start as i64,
                k.expires_at() as i64,
                limit as i64
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    Ok(used.map(|u| u as u64))
}

#[async_trait]
impl QuotaStore for SqliteStateStore {
    async fn charge(&self, key: &QuotaKey, limit: u64) -> Result<QuotaCharge, StoreError> {
        let k = key.clone();
        let this = self.clone();
        self.with(move |conn| {
            this.maybe_purge(conn);
            Ok(match charge_in(conn, &k, limit)? {
                Some(used) => QuotaCharge::Allowed { used },
                None => QuotaCharge::Exhausted,
            })
        })
        .await
    }

    async fn charge_all(&self, charges: &[(QuotaKey, u64)]) -> Result<QuotaDecision, StoreError> {
        let charges = charges.to_vec();
        let this = self.clone();
        self.with(move |conn| {
            this.maybe_purge(conn);
            // One write transaction: a refusal rolls back the counters charged
            // before it, and no other writer sees them in between.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            for (index, (k, limit)) in charges.iter().enumerate() {
                if charge_in(&tx, k, *limit)?.is_none() {
                    return Ok(QuotaDecision::Exhausted { index });
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(QuotaDecision::Allowed)
        })
        .await
    }

    async fn used(&self, key: &QuotaKey) -> Result<u64, StoreError> {
        let k = key.clone();
        self.with(move |conn| {
            let used: Option<i64> = conn
                .query_row(
                    "SELECT used FROM quotas
                     WHERE tenant = ?1 AND extension = ?2 AND window = ?3 AND window_start = ?4",
                    params![
                        k.tenant,
                        k.extension,
                        k.window.name(),
                        k.window_start as i64
                    ],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            Ok(used.unwrap_or(0) as u64)
        })
        .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStateStore {
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        claim_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        let this = self.clone();
        self.with(move |conn| {
            this.maybe_purge(conn);
            let now = runtime_core::clock::unix_millis();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let found: Option<(String, Option<Vec<u8>>, i64)> = tx
                .query_row(
                    "SELECT state, response, expires_ms FROM idempotency
                     WHERE scope = ?1 AND key = ?2",
                    params![scope, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            match found {
                Some((state, response, expires)) if expires as u64 >= now => {
                    return Ok(match (state.as_str(), response) {
                        ("done", Some(r)) => Claim::Completed(r),
                        _ => Claim::InProgress,
                    });
                }
                _ => {}
            }
            tx.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, state, response, expires_ms)
                 VALUES (?1, ?2, 'claimed', NULL, ?3)",
                params![scope, key, (now + claim_ttl.as_millis() as u64) as i64],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(Claim::Claimed)
        })
        .await
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (scope, key, response) = (scope.to_string(), key.to_string(), response.to_vec());
        self.with(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, state, response, expires_ms)
                 VALUES (?1, ?2, 'done', ?3, ?4)",
                params![
                    scope,
                    key,
                    response,
                    (runtime_core::clock::unix_millis() + ttl.as_millis() as u64) as i64
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn release(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM idempotency WHERE scope = ?1 AND key = ?2 AND state = 'claimed'",
                params![scope, key],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ExecutionLog for SqliteStateStore {
    async fn record(&self, r: &ExecutionRecord, ttl: Duration) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(r), ttl).await
    }

    async fn record_batch(
        &self,
        records: &[ExecutionRecord],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let records = records.to_vec();
        let this = self.clone();
        self.with(move |conn| {
            this.maybe_purge(conn);
            // One transaction per batch: one commit instead of one per record.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let expires_at = (runtime_core::clock::unix_millis() / 1000 + ttl.as_secs()) as i64;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO executions (tenant, extension, started_at_ms,
                             request_id, install_id, version, content_hash, duration_ms, status,
                             outcome, error, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .map_err(db_err)?;
                for r in &records {
                    insert
                        .execute(params![
                            r.tenant,
                            r.extension,
                            r.started_at_ms as i64,
                            r.request_id,
                            r.install_id,
                            r.version,
                            r.content_hash,
                            r.duration_ms as i64,
                            r.status as i64,
                            r.outcome,
                            r.error,
                            expires_at
                        ])
                        .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn recent(
        &self,
        tenant: &str,
        extension: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let (tenant, extension) = (tenant.to_string(), extension.to_string());
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT request_id, tenant, extension, install_id, version, content_hash,
                         started_at_ms, duration_ms, status, outcome, error
                     FROM executions
                     WHERE tenant = ?1 AND extension = ?2 AND expires_at >= ?3
                     ORDER BY started_at_ms DESC, request_id DESC LIMIT ?4",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![
                        tenant,
                        extension,
                        (runtime_core::clock::unix_millis() / 1000) as i64,
                        limit as i64
                    ],
                    |r| {
                        Ok(ExecutionRecord {
                            request_id: r.get(0)?,
                            tenant: r.get(1)?,
                            extension: r.get(2)?,
                            install_id: r.get(3)?,
                            version: r.get(4)?,
                            content_hash: r.get(5)?,
                            started_at_ms: r.get::<_, i64>(6)? as u64,
                            duration_ms: r.get::<_, i64>(7)? as u64,
                            status: r.get::<_, i64>(8)? as u16,
                            outcome: r.get(9)?,
                            error: r.get(10)?,
                        })
                    },
                )
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }
}
