//! The registry in SQLite: one file in the data directory, safe for several
//! processes at once (WAL journal, a busy timeout, and `BEGIN IMMEDIATE` for every
//! read-modify-write so two writers never interleave).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use runtime_core::artifact::{ArtifactKey, ArtifactRef, ContentHash, Encoding, StoredObject};
use runtime_core::engine::Target;
use runtime_core::store::StoreError;
use runtime_core::store::registry::{
    InstallRecord, InstallRequest, Registered, Registry, RegistryError, Subscription,
    VersionRecord, check_install_request, effective_grants, manifest_subscriptions,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS versions (
    extension_id   TEXT NOT NULL,
    version        TEXT NOT NULL,
    publisher      TEXT,
    content_hash   TEXT NOT NULL UNIQUE,
    manifest_json  TEXT NOT NULL,
    bundle_size    INTEGER NOT NULL,
    signer_key_id  TEXT NOT NULL,
    signature_json TEXT NOT NULL,
    published_at   INTEGER NOT NULL,
    PRIMARY KEY (extension_id, version)
);
CREATE TABLE IF NOT EXISTS artifacts (
    content_hash TEXT NOT NULL,
    target       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (content_hash, target, fingerprint)
);
CREATE TABLE IF NOT EXISTS installs (
    install_id      TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    extension_id    TEXT NOT NULL,
    version         TEXT NOT NULL,
    operator_grants TEXT NOT NULL,
    config          TEXT NOT NULL,
    secret_ref      TEXT,
    enabled         INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (tenant, extension_id)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    tenant       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    extension_id TEXT NOT NULL,
    handler      TEXT NOT NULL,
    PRIMARY KEY (tenant, topic, extension_id, handler)
);
";

/// The SQLite registry.
#[derive(Clone)]
pub struct SqliteRegistry {
    conn: Arc<Mutex<Connection>>,
    /// A connection of its own for the change signal ([`Registry::generation`]):
    /// SQLite's `data_version` moves when *another* connection commits, so this
    /// one sees the writes of `conn` as well as every other process's.
    probe: Arc<Mutex<Connection>>,
}

fn db_err(e: rusqlite::Error) -> RegistryError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            RegistryError::Store(StoreError::Unavailable(e.to_string()))
        }
        e => RegistryError::Store(StoreError::Internal(e.to_string())),
    }
}

impl SqliteRegistry {
    /// Opens (creating if needed) the registry database at `path`.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| RegistryError::Store(StoreError::Unavailable(e.to_string())))?;
        }
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        add_host_id_columns(&conn)?;
        add_artifact_object_columns(&conn)?;
        let probe = Connection::open(path).map_err(db_err)?;
        // The probe only reads; in WAL mode a read waits for nothing but a WAL
        // recovery, and a probe that fails only drops the cache.
        probe
            .busy_timeout(Duration::from_millis(100))
            .map_err(db_err)?;
        Ok(SqliteRegistry {
            conn: Arc::new(Mutex::new(conn)),
            probe: Arc::new(Mutex::new(probe)),
        })
    }

    /// Runs `f` on the connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, RegistryError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(|e| RegistryError::Store(StoreError::Internal(e.to_string())))?
    }
}

fn read_artifacts(conn: &Connection, content: &str) -> Result<Vec<ArtifactRef>, RegistryError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT target, fingerprint, sha256, size, encoding, stored_sha256, stored_size
             FROM artifacts WHERE content_hash = ?1 ORDER BY target, fingerprint",
        )
        .map_err(db_err)?;
    let hash = ContentHash::parse(content)
        .ok_or_else(|| RegistryError::Invalid(format!("stored hash {content:?}")))?;
    type Row = (
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows = stmt
        .query_map(params![content], |r| -> rusqlite::Result<Row> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (target, fingerprint, sha, size, encoding, stored_sha, stored_size) =
            row.map_err(db_err)?;
        let target = Target::parse(&target)
            .map_err(|e| RegistryError::Invalid(format!("stored target: {e}")))?;
        let stored = match (encoding, stored_sha, stored_size) {
            (None, _, _) => None,
            (Some(encoding), Some(sha), Some(size)) => Some(StoredObject {
                encoding: Encoding::parse(&encoding).ok_or_else(|| {
                    RegistryError::Invalid(format!("stored artifact encoding {encoding:?}"))
                })?,
                sha256: parse_sha256(&sha)?,
                size: size as u64,
            }),
            (Some(encoding), ..) => {
                return Err(RegistryError::Invalid(format!(
                    "artifact encoding {encoding:?} without the object's sha256 and size"
                )));
            }
        };
        out.push(ArtifactRef {
            key: ArtifactKey {
                content: hash,
                target,
                fingerprint,
            },
            sha256: parse_sha256(&sha)?,
            size: size as u64,
            stored,
        });
    }
    Ok(out)
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], RegistryError> {
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(hex, &mut sha256)
        .map_err(|_| RegistryError::Invalid(format!("stored sha256 {hex:?}")))?;
    Ok(sha256)
}

const VERSION_COLUMNS: &str = "extension_id, version, publisher, content_hash, manifest_json,
    bundle_size, signer_key_id, signature_json, published_at";

fn read_version(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<VersionRecord, RegistryError> {
    let hash: String = r.get(3).map_err(db_err)?;
    let content_hash = ContentHash::parse(&hash)
        .ok_or_else(|| RegistryError::Invalid(format!("stored hash {hash:?}")))?;
    Ok(VersionRecord {
        extension_id: r.get(0).map_err(db_err)?,
        version: r.get(1).map_err(db_err)?,
        publisher: r.get(2).map_err(db_err)?,
        content_hash,
        manifest_json: r.get(4).map_err(db_err)?,
        bundle_size: r.get::<_, i64>(5).map_err(db_err)? as u64,
        signer_key_id: r.get(6).map_err(db_err)?,
        signature_json: r.get(7).map_err(db_err)?,
        published_at: r.get(8).map_err(db_err)?,
        artifacts: read_artifacts(conn, &hash)?,
    })
}

fn query_versions(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<VersionRecord>, RegistryError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {VERSION_COLUMNS} FROM versions {filter}"))
        .map_err(db_err)?;
    let mut rows = stmt.query(args).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(read_version(conn, r)?);
    }
    Ok(out)
}

fn newest_first(mut v: Vec<VersionRecord>) -> Vec<VersionRecord> {
    v.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.version).ok();
        let pb = semver::Version::parse(&b.version).ok();
        pb.cmp(&pa).then_with(|| b.version.cmp(&a.version))
    });
    v
}

fn upsert_artifact(conn: &Connection, a: &ArtifactRef) -> Result<(), RegistryError> {
    let stored = a.stored.as_ref();
    conn.execute(
        "INSERT INTO artifacts (content_hash, target, fingerprint, sha256, size,
             encoding, stored_sha256, stored_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (content_hash, target, fingerprint)
         DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
             encoding = excluded.encoding, stored_sha256 = excluded.stored_sha256,
             stored_size = excluded.stored_size",
        params![
            a.key.content.to_string(),
            a.key.target.as_str(),
            a.key.fingerprint,
            hex::encode(a.sha256),
            a.size as i64,
            stored.map(|o| o.encoding.as_str()),
            stored.map(|o| hex::encode(o.sha256)),
            stored.map(|o| o.size as i64),
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

fn read_install(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<InstallRecord, RegistryError> {
    let extension_id: String = r.get(2).map_err(db_err)?;
    let version: String = r.get(3).map_err(db_err)?;
    let grants_json: String = r.get(4).map_err(db_err)?;
    let config_json: String = r.get(5).map_err(db_err)?;
    let operator_grants: Vec<String> = serde_json::from_str(&grants_json)
        .map_err(|e| RegistryError::Invalid(format!("stored grants: {e}")))?;
    let config: BTreeMap<String, String> = serde_json::from_str(&config_json)
        .map_err(|e| RegistryError::Invalid(format!("stored config: {e}")))?;
    let v = query_versions(
        conn,
        "WHERE extension_id = ?1 AND version = ?2",
        &[&extension_id, &version],
    )?
    .pop()
    .ok_or_else(|| RegistryError::NotFound(format!("{extension_id} {version}")))?;
    Ok(InstallRecord {
        install_id: r.get(0).map_err(db_err)?,
        tenant: r.get(1).map_err(db_err)?,
        granted: effective_grants(&v.manifest_json, &operator_grants)?,
        extension_id,
        version,
        content_hash: v.content_hash,
        operator_grants,
        config,
        secret_ref: r.get(6).map_err(db_err)?,
        enabled: r.get::<_, i64>(7).map_err(db_err)? != 0,
        host_extension_id: r.get(8).map_err(db_err)?,
        host_install_id: r.get(9).map_err(db_err)?,
    })
}

const INSTALL_COLUMNS: &str = "install_id, tenant, extension_id, version, operator_grants, config, \
     secret_ref, enabled, host_extension_id, host_install_id";

/// The column names of `table` (one of ours: the name is never input).
fn table_columns(conn: &Connection, table: &str) -> Result<Vec<String>, RegistryError> {
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .map_err(db_err)?;
    stmt.query_map([], |r| r.get(0))
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

/// The host-app id columns, added to a registry created before they existed; a
/// host extension id names at most one install per tenant.
fn add_host_id_columns(conn: &Connection) -> Result<(), RegistryError> {
    let columns = table_columns(conn, "installs")?;
    for column in ["host_extension_id", "host_install_id"] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE installs ADD COLUMN {column} TEXT"))
                .map_err(db_err)?;
        }
    }
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS installs_by_host_extension
             ON installs (host_extension_id, tenant) WHERE host_extension_id IS NOT NULL",
    )
    .map_err(db_err)
}

/// The stored object's columns (encoding, its sha256 and size), added to a
/// registry created before artifacts were compressed; rows without them are raw.
fn add_artifact_object_columns(conn: &Connection) -> Result<(), RegistryError> {
    let columns = table_columns(conn, "artifacts")?;
    for (column, ty) in [
        ("encoding", "TEXT"),
        ("stored_sha256", "TEXT"),
        ("stored_size", "INTEGER"),
    ] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!("ALTER TABLE artifacts ADD COLUMN {column} {ty}"))
                .map_err(db_err)?;
        }
    }
    Ok(())
}

fn get_install(
    conn: &Connection,
    tenant: &str,
    extension_id: &str,
) -> Result<Option<InstallRecord>, RegistryError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INSTALL_COLUMNS} FROM installs WHERE tenant = ?1 AND extension_id = ?2"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query(params![tenant, extension_id]).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => Ok(Some(read_install(conn, r)?)),
        None => Ok(None),
    }
}

fn new_install_id() -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("inst_{}", hex::encode(b))
}

#[async_trait]
impl Registry for SqliteRegistry {
    async fn register_version(&self, v: &VersionRecord) -> Result<Registered, RegistryError> {
        let v = v.clone();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT content_hash FROM versions WHERE extension_id = ?1 AND version = ?2",
                    params![v.extension_id, v.version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let hash = v.content_hash.to_string();
            let outcome = match existing {
                Some(h) if h == hash => Registered::Unchanged,
                Some(h) => {
                    return Err(RegistryError::VersionConflict {
                        extension: v.extension_id.clone(),
                        version: v.version.clone(),
                        existing: h,
                    });
                }
                None => {
                    tx.execute(
                        &format!(
                            "INSERT INTO versions ({VERSION_COLUMNS})
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                        ),
                        params![
                            v.extension_id,
                            v.version,
                            v.publisher,
                            hash,
                            v.manifest_json,
                            v.bundle_size as i64,
                            v.signer_key_id,
                            v.signature_json,
                            v.published_at
                        ],
                    )
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                        {
                            RegistryError::Invalid(format!(
                                "bundle {hash} is already published under another name or version"
                            ))
                        }
                        e => db_err(e),
                    })?;
                    Registered::Created
                }
            };
            for a in &v.artifacts {
                upsert_artifact(&tx, a)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(outcome)
        })
        .await
    }

    async fn get_version(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        let (e, v) = (extension_id.to_string(), version.to_string());
        self.with(move |conn| {
            Ok(query_versions(conn, "WHERE extension_id = ?1 AND version = ?2", &[&e, &v])?.pop())
        })
        .await
    }

    async fn version_by_hash(
        &self,
        content: &ContentHash,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        let h = content.to_string();
        self.with(move |conn| Ok(query_versions(conn, "WHERE content_hash = ?1", &[&h])?.pop()))
            .await
    }

    async fn list_versions(&self, extension_id: &str) -> Result<Vec<VersionRecord>, RegistryError> {
        let e = extension_id.to_string();
        self.with(move |conn| {
            Ok(newest_first(query_versions(
                conn,
                "WHERE extension_id = ?1",
                &[&e],
            )?))
        })
        .await
    }

    async fn list_extensions(&self) -> Result<Vec<String>, RegistryError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare("SELECT DISTINCT extension_id FROM versions ORDER BY extension_id")
                .map_err(db_err)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db_err)
        })
        .await
    }

    async fn put_artifact(
        &self,
        content: &ContentHash,
        artifact: &ArtifactRef,
    ) -> Result<(), RegistryError> {
        if artifact.key.content != *content {
            return Err(RegistryError::Invalid(
                "artifact belongs to another bundle".into(),
            ));
        }
        let a = artifact.clone();
        let h = content.to_string();
        self.with(move |conn| {
            let known: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM versions WHERE content_hash = ?1",
                    params![h],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            if known.is_none() {
                return Err(RegistryError::NotFound(format!("bundle {h}")));
            }
            upsert_artifact(conn, &a)
        })
        .await
    }

    async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError> {
        let req = req.clone();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let versions = newest_first(query_versions(
                &tx,
                "WHERE extension_id = ?1",
                &[&req.extension_id],
            )?);
            let v = match &req.version {
                Some(want) => versions.into_iter().find(|v| &v.version == want),
                None => versions.into_iter().next(),
            }
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "{} {}",
                    req.extension_id,
                    req.version.as_deref().unwrap_or("(any version)")
                ))
            })?;
            check_install_request(&v.manifest_json, &req)?;
            let grants = serde_json::to_string(&req.grants).expect("strings serialize");
            let config = serde_json::to_string(&req.config).expect("strings serialize");
            let written = tx.execute(
                "INSERT INTO installs (install_id, tenant, extension_id, version,
                     operator_grants, config, secret_ref, enabled, updated_at,
                     host_extension_id, host_install_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 1, ?7, ?8, ?9)
                 ON CONFLICT (tenant, extension_id) DO UPDATE SET
                     version = excluded.version,
                     operator_grants = excluded.operator_grants,
                     config = excluded.config,
                     updated_at = excluded.updated_at,
                     host_extension_id = coalesce(excluded.host_extension_id, host_extension_id),
                     host_install_id = coalesce(excluded.host_install_id, host_install_id)",
                params![
                    new_install_id(),
                    req.tenant,
                    req.extension_id,
                    v.version,
                    grants,
                    config,
                    runtime_core::clock::unix_secs() as i64,
                    req.host_extension_id,
                    req.host_install_id,
                ],
            );
            match written {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(RegistryError::Invalid(format!(
                        "host extension id {:?} already names another install of tenant {}",
                        req.host_extension_id.as_deref().unwrap_or_default(),
                        req.tenant
                    )));
                }
                other => other.map_err(db_err)?,
            };
            replace_subscriptions(&tx, &req.tenant, &req.extension_id, &v.manifest_json)?;
            let record = get_install(&tx, &req.tenant, &req.extension_id)?
                .ok_or_else(|| RegistryError::NotFound("install just written".into()))?;
            tx.commit().map_err(db_err)?;
            Ok(record)
        })
        .await
    }

    async fn uninstall(&self, tenant: &str, extension_id: &str) -> Result<(), RegistryError> {
        let (t, e) = (tenant.to_string(), extension_id.to_string());
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let n = tx
                .execute(
                    "DELETE FROM installs WHERE tenant = ?1 AND extension_id = ?2",
                    params![t, e],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(RegistryError::NotFound(format!("install of {e} for {t}")));
            }
            tx.execute(
                "DELETE FROM subscriptions WHERE tenant = ?1 AND extension_id = ?2",
                params![t, e],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn set_enabled(
        &self,
        tenant: &str,
        extension_id: &str,
        enabled: bool,
    ) -> Result<InstallRecord, RegistryError> {
        let (t, e) = (tenant.to_string(), extension_id.to_string());
        self.with(move |conn| {
            let n = conn
                .execute(
                    "UPDATE installs SET enabled = ?3, updated_at = ?4
                     WHERE tenant = ?1 AND extension_id = ?2",
                    params![
                        t,
                        e,
                        enabled as i64,
                        runtime_core::clock::unix_secs() as i64
                    ],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(RegistryError::NotFound(format!("install of {e} for {t}")));
            }
            get_install(conn, &t, &e)?
                .ok_or_else(|| RegistryError::NotFound(format!("install of {e} for {t}")))
        })
        .await
    }

    async fn get_install(
        &self,
        tenant: &str,
        extension_id: &str,
    ) -> Result<Option<InstallRecord>, RegistryError> {
        let (t, e) = (tenant.to_string(), extension_id.to_string());
        self.with(move |conn| get_install(conn, &t, &e)).await
    }

    async fn list_installs(&self, tenant: &str) -> Result<Vec<InstallRecord>, RegistryError> {
        let t = tenant.to_string();
        self.with(move |conn| {
            query_installs(conn, "WHERE tenant = ?1 ORDER BY extension_id", params![t])
        })
        .await
    }

    async fn list_installs_by_host_extension(
        &self,
        host_extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        let h = host_extension_id.to_string();
        self.with(move |conn| {
            query_installs(
                conn,
                "WHERE host_extension_id = ?1 ORDER BY tenant",
                params![h],
            )
        })
        .await
    }

    async fn list_installs_of(
        &self,
        extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        let e = extension_id.to_string();
        self.with(move |conn| {
            query_installs(conn, "WHERE extension_id = ?1 ORDER BY tenant", params![e])
        })
        .await
    }

    async fn subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, RegistryError> {
        let (t, topic) = (tenant.to_string(), topic.to_string());
        self.with(move |conn| {
            // Disabling keeps the rows (re-enabling restores them) but hides them here.
            let mut stmt = conn
                .prepare(
                    "SELECT s.extension_id, s.handler FROM subscriptions s
                     JOIN installs i ON i.tenant = s.tenant AND i.extension_id = s.extension_id
                     WHERE s.tenant = ?1 AND s.topic = ?2 AND i.enabled = 1
                     ORDER BY s.extension_id, s.handler",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![t, topic], |r| {
                    Ok(Subscription {
                        tenant: t.clone(),
                        extension_id: r.get(0)?,
                        topic: topic.clone(),
                        handler: r.get(1)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    /// `PRAGMA data_version` of the probe connection: SQLite's own signal, so no
    /// write path has to remember to bump a counter, and a change made by
    /// another process (an `alga-lambda install` beside `up`, even the sqlite3
    /// shell) counts. It reads the WAL index in shared memory (measured: a few
    /// microseconds), so it runs inline instead of on the blocking pool, whose
    /// hand-off would cost more than the read.
    async fn generation(&self) -> Result<Option<u64>, RegistryError> {
        let probe = self.probe.lock().unwrap();
        let version: i64 = probe
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(db_err)?;
        Ok(Some(version as u64))
    }
}

/// Replaces an install's subscriptions with those of the manifest it now runs.
fn replace_subscriptions(
    conn: &Connection,
    tenant: &str,
    extension_id: &str,
    manifest_json: &str,
) -> Result<(), RegistryError> {
    conn.execute(
        "DELETE FROM subscriptions WHERE tenant = ?1 AND extension_id = ?2",
        params![tenant, extension_id],
    )
    .map_err(db_err)?;
    for (topic, handler) in manifest_subscriptions(manifest_json) {
        conn.execute(
            "INSERT INTO subscriptions (tenant, topic, extension_id, handler)
             VALUES (?1, ?2, ?3, ?4)",
            params![tenant, topic, extension_id, handler],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

fn query_installs(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<InstallRecord>, RegistryError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {INSTALL_COLUMNS} FROM installs {filter}"))
        .map_err(db_err)?;
    let mut rows = stmt.query(args).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(read_install(conn, r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry written before artifacts were compressed opens with the new
    /// columns added, and its artifact reads back raw (no stored object).
    #[tokio::test]
    async fn an_artifact_recorded_before_compression_reads_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let content = ContentHash::of(b"old");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE artifacts (
                    content_hash TEXT NOT NULL, target TEXT NOT NULL,
                    fingerprint TEXT NOT NULL, sha256 TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    PRIMARY KEY (content_hash, target, fingerprint));",
            )
            .unwrap();
            old.execute(
                "INSERT INTO artifacts VALUES (?1, ?2, 'fp', ?3, 42)",
                params![
                    content.to_string(),
                    Target::host().as_str(),
                    hex::encode([3u8; 32])
                ],
            )
            .unwrap();
        }
        let reg = SqliteRegistry::open(&path).unwrap();
        let hash = content.to_string();
        let got = reg
            .with(move |conn| read_artifacts(conn, &hash))
            .await
            .unwrap();
        let raw = ArtifactRef {
            key: ArtifactKey {
                content,
                target: Target::host(),
                fingerprint: "fp".into(),
            },
            sha256: [3; 32],
            size: 42,
            stored: None,
        };
        assert_eq!(got, vec![raw]);
    }
}
