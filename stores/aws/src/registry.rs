//! The registry in DynamoDB (single table; item layout in docs/backends.md):
//! versions under `EXT#<extension>`, bundles with their artifacts under
//! `BUNDLE#<content hash>`, installs under `TENANT#<tenant>` and, through `gsi1`,
//! under `INSTALLS_OF#<extension>`. Multi-item writes are transactions.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem,
};

use super::error::{cancel_codes, condition_failed, map_sdk};
use super::keys::{self, GSI1, Item, n, s};
use super::subscriptions::{SUBS_ATTR, pairs_value, recorded_pairs};
use runtime_core::artifact::{ArtifactKey, ArtifactRef, ContentHash, Encoding, StoredObject};
use runtime_core::engine::Target;
use runtime_core::store::StoreError;
use runtime_core::store::registry::{
    InstallRecord, InstallRequest, Registered, Registry, RegistryError, Subscription,
    VersionRecord, check_install_request, effective_grants, manifest_subscriptions,
};

type Attrs = HashMap<String, AttributeValue>;

/// A [`Registry`] over the single table.
#[derive(Clone, Debug)]
pub struct DynamoRegistry {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
}

fn version_key(extension: &str, version: &str) -> Attrs {
    keys::key(
        format!("EXT#{}", keys::part(extension)),
        format!("VER#{}", keys::part(version)),
    )
}

fn bundle_pk(content: &ContentHash) -> String {
    format!("BUNDLE#{}", content.hex())
}

const BUNDLE_SK: &str = "#BUNDLE";
const EXTENSIONS_PK: &str = "EXTENSIONS";

fn install_key(tenant: &str, extension: &str) -> Attrs {
    keys::key(
        format!("TENANT#{}", keys::part(tenant)),
        format!("INSTALL#{}", keys::part(extension)),
    )
}

/// The lookup item naming which extension a host-app extension id is, per tenant.
fn host_extension_key(host_extension_id: &str, tenant: &str) -> Attrs {
    keys::key(
        format!("HOSTEXT#{}", keys::part(host_extension_id)),
        format!("TENANT#{}", keys::part(tenant)),
    )
}

fn store_err(e: StoreError) -> RegistryError {
    RegistryError::Store(e)
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, RegistryError> {
    r.map_err(|e| store_err(StoreError::Internal(format!("request: {e}"))))
}

fn artifact_item(a: &ArtifactRef) -> Attrs {
    let mut item = keys::key(
        bundle_pk(&a.key.content),
        format!(
            "ART#{}#{}",
            a.key.target.as_str(),
            keys::part(&a.key.fingerprint)
        ),
    );
    item.insert("target".into(), s(a.key.target.as_str()));
    item.insert("fingerprint".into(), s(&a.key.fingerprint));
    item.insert("sha256".into(), s(hex::encode(a.sha256)));
    item.insert("size".into(), n(a.size));
    // Absent on items written before artifacts were compressed: a raw object.
    if let Some(o) = &a.stored {
        item.insert("encoding".into(), s(o.encoding.as_str()));
        item.insert("stored_sha256".into(), s(hex::encode(o.sha256)));
        item.insert("stored_size".into(), n(o.size));
    }
    item
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], RegistryError> {
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(hex, &mut sha256)
        .map_err(|_| RegistryError::Invalid(format!("stored sha256 {hex:?}")))?;
    Ok(sha256)
}

fn read_artifact(content: ContentHash, item: &Attrs) -> Result<ArtifactRef, RegistryError> {
    let i = Item(item);
    let sha256 = parse_sha256(&i.str("sha256").map_err(store_err)?)?;
    let stored = match item.contains_key("encoding") {
        false => None,
        true => {
            let encoding = i.str("encoding").map_err(store_err)?;
            Some(StoredObject {
                encoding: Encoding::parse(&encoding).ok_or_else(|| {
                    RegistryError::Invalid(format!("stored artifact encoding {encoding:?}"))
                })?,
                sha256: parse_sha256(&i.str("stored_sha256").map_err(store_err)?)?,
                size: i.u64("stored_size").map_err(store_err)?,
            })
        }
    };
    let target = Target::parse(&i.str("target").map_err(store_err)?)
        .map_err(|e| RegistryError::Invalid(format!("stored target: {e}")))?;
    Ok(ArtifactRef {
        key: ArtifactKey {
            content,
            target,
            fingerprint: i.str("fingerprint").map_err(store_err)?,
        },
        sha256,
        size: i.u64("size").map_err(store_err)?,
        stored,
    })
}

/// The manifest's requested capabilities as a minimal manifest, kept on install
/// items so effective grants are computed without reading the version.
fn requested_caps(manifest_json: &str) -> String {
    let caps = serde_json::from_str::<serde_json::Value>(manifest_json)
        .ok()
        .and_then(|m| m.get("capabilities").cloned())
        .unwrap_or(serde_json::Value::Array(vec![]));
    serde_json::json!({ "capabilities": caps }).to_string()
}

fn newest_first(mut v: Vec<VersionRecord>) -> Vec<VersionRecord> {
    v.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.version).ok();
        let pb = semver::Version::parse(&b.version).ok();
        pb.cmp(&pa).then_with(|| b.version.cmp(&a.version))
    });
    v
}

fn read_install(item: &Attrs) -> Result<InstallRecord, RegistryError> {
    let i = Item(item);
    let get = |name: &str| i.str(name).map_err(store_err);
    let operator_grants: Vec<String> = serde_json::from_str(&get("operator_grants")?)
        .map_err(|e| RegistryError::Invalid(format!("stored grants: {e}")))?;
    let config: BTreeMap<String, String> = serde_json::from_str(&get("config")?)
        .map_err(|e| RegistryError::Invalid(format!("stored config: {e}")))?;
    let hash = get("content_hash")?;
    Ok(InstallRecord {
        install_id: get("install_id")?,
        tenant: get("tenant")?,
        extension_id: get("extension_id")?,
        version: get("version")?,
        content_hash: ContentHash::parse(&hash)
            .ok_or_else(|| RegistryError::Invalid(format!("stored hash {hash:?}")))?,
        granted: effective_grants(&get("requested")?, &operator_grants)?,
        operator_grants,
        config,
        secret_ref: i.opt_str("secret_ref").map_err(store_err)?,
        enabled: i.bool("enabled").map_err(store_err)?,
        host_extension_id: i.opt_str("host_extension_id").map_err(store_err)?,
        host_install_id: i.opt_str("host_install_id").map_err(store_err)?,
    })
}

fn new_install_id() -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("inst_{}", hex::encode(b))
}

impl DynamoRegistry {
    /// The registry over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoRegistry {
            client,
            table: table.into(),
        }
    }

    /// Every item a query yields, across pages.
    pub(super) async fn query_all(
        &self,
        q: QueryFluentBuilder,
    ) -> Result<Vec<Attrs>, RegistryError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = q
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_err(map_sdk("Query (registry)", &e)))?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Claims `host_extension_id` for (tenant, extension): a host extension id
    /// names at most one extension per tenant.
    async fn claim_host_extension(
        &self,
        host_extension_id: &str,
        tenant: &str,
        extension_id: &str,
    ) -> Result<(), RegistryError> {
        let mut item = host_extension_key(host_extension_id, tenant);
        item.insert("tenant".into(), s(tenant));
        item.insert("extension_id".into(), s(extension_id));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR extension_id = :ext")
            .expression_attribute_values(":ext", s(extension_id))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(RegistryError::Invalid(format!(
                    "host extension id {host_extension_id:?} already names another install of tenant {tenant}"
                )))
            }
            Err(e) => Err(store_err(map_sdk("PutItem (host extension id)", &e))),
        }
    }

    /// Drops a tenant's claim of a host extension id.
    async fn release_host_extension(
        &self,
        host_extension_id: &str,
        tenant: &str,
    ) -> Result<(), RegistryError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(host_extension_key(host_extension_id, tenant)))
            .send()
            .await
            .map_err(|e| store_err(map_sdk("DeleteItem (host extension id)", &e)))?;
        Ok(())
    }

    async fn get(&self, key: Attrs) -> Result<Option<Attrs>, RegistryError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err(map_sdk("GetItem (registry)", &e)))?
            .item)
    }

    async fn artifacts(&self, content: ContentHash) -> Result<Vec<ArtifactRef>, RegistryError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :art)")
                    .expression_attribute_values(":pk", s(bundle_pk(&content)))
                    .expression_attribute_values(":art", s("ART#")),
            )
            .await?;
        items.iter().map(|i| read_artifact(content, i)).collect()
    }

    async fn read_version(&self, item: &Attrs) -> Result<VersionRecord, RegistryError> {
        let i = Item(item);
        let get = |name: &str| i.str(name).map_err(store_err);
        let hash = get("content_hash")?;
        let content_hash = ContentHash::parse(&hash)
            .ok_or_else(|| RegistryError::Invalid(format!("stored hash {hash:?}")))?;
        let published = get("published_at")?;
        Ok(VersionRecord {
            extension_id: get("extension_id")?,
            version: get("version")?,
            publisher: i.opt_str("publisher").map_err(store_err)?,
            content_hash,
            manifest_json: get("manifest_json")?,
            bundle_size: i.u64("bundle_size").map_err(store_err)?,
            signer_key_id: get("signer_key_id")?,
            signature_json: get("signature_json")?,
            artifacts: self.artifacts(content_hash).await?,
            published_at: published.parse().map_err(|_| {
                RegistryError::Invalid(format!("stored published_at {published:?}"))
            })?,
        })
    }

    async fn put_artifacts(&self, artifacts: &[ArtifactRef]) -> Result<(), RegistryError> {
        for a in artifacts {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(artifact_item(a)))
                .send()
                .await
                .map_err(|e| store_err(map_sdk("PutItem (artifact)", &e)))?;
        }
        Ok(())
    }

    /// Whether `v` matches what is stored under its name and version.
    async fn compare_existing(
        &self,
        v: &VersionRecord,
    ) -> Result<Option<Registered>, RegistryError> {
        let Some(existing) = self.get(version_key(&v.extension_id, &v.version)).await? else {
            return Ok(None);
        };
        let hash = Item(&existing).str("content_hash").map_err(store_err)?;
        if hash == v.content_hash.to_string() {
            self.put_artifacts(&v.artifacts).await?;
            Ok(Some(Registered::Unchanged))
        } else {
            Err(RegistryError::VersionConflict {
                extension: v.extension_id.clone(),
                version: v.version.clone(),
                existing: hash,
            })
        }
    }
}

fn put_item(
    table: &str,
    item: Attrs,
    condition: Option<&str>,
) -> Result<TransactWriteItem, RegistryError> {
    Ok(TransactWriteItem::builder()
        .put(built(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(String::from))
                .build(),
        )?)
        .build())
}

#[async_trait]
impl Registry for DynamoRegistry {
    async fn register_version(&self, v: &VersionRecord) -> Result<Registered, RegistryError> {
        if let Some(outcome) = self.compare_existing(v).await? {
            return Ok(outcome);
        }
        let hash = v.content_hash.to_string();
        let mut version = version_key(&v.extension_id, &v.version);
        version.insert("extension_id".into(), s(&v.extension_id));
        version.insert("version".into(), s(&v.version));
        if let Some(p) = &v.publisher {
            version.insert("publisher".into(), s(p));
        }
        version.insert("content_hash".into(), s(&hash));
        version.insert("manifest_json".into(), s(&v.manifest_json));
        version.insert("bundle_size".into(), n(v.bundle_size));
        version.insert("signer_key_id".into(), s(&v.signer_key_id));
        version.insert("signature_json".into(), s(&v.signature_json));
        version.insert("published_at".into(), s(v.published_at.to_string()));
        let mut bundle = keys::key(bundle_pk(&v.content_hash), BUNDLE_SK.into());
        bundle.insert("extension_id".into(), s(&v.extension_id));
        bundle.insert("version".into(), s(&v.version));
        let mut ext = keys::key(EXTENSIONS_PK.into(), v.extension_id.clone());
        ext.insert("extension_id".into(), s(&v.extension_id));

        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(put_item(
                &self.table,
                version,
                Some("attribute_not_exists(pk)"),
            )?)
            .transact_items(put_item(
                &self.table,
                bundle,
                Some("attribute_not_exists(pk)"),
            )?)
            .transact_items(put_item(&self.table, ext, None)?);
        for a in &v.artifacts {
            tx = tx.transact_items(put_item(&self.table, artifact_item(a), None)?);
        }
        match tx.send().await {
            Ok(_) => Ok(Registered::Created),
            Err(e) => match cancel_codes(&e) {
                // Someone registered this name + version meanwhile.
                Some(codes) if condition_failed(&codes, 0) => self
                    .compare_existing(v)
                    .await?
                    .ok_or_else(|| store_err(StoreError::Unavailable("version vanished".into()))),
                Some(codes) if condition_failed(&codes, 1) => Err(RegistryError::Invalid(format!(
                    "bundle {hash} is already published under another name or version"
                ))),
                Some(codes) => Err(store_err(StoreError::Unavailable(format!(
                    "register {} {}: transaction cancelled ({})",
                    v.extension_id,
                    v.version,
                    codes.join(", ")
                )))),
                None => Err(store_err(map_sdk("TransactWriteItems (register)", &e))),
            },
        }
    }

    async fn get_version(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        match self.get(version_key(extension_id, version)).await? {
            Some(item) => Ok(Some(self.read_version(&item).await?)),
            None => Ok(None),
        }
    }

    async fn version_by_hash(
        &self,
        content: &ContentHash,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        let Some(bundle) = self
            .get(keys::key(bundle_pk(content), BUNDLE_SK.into()))
            .await?
        else {
            return Ok(None);
        };
        let b = Item(&bundle);
        self.get_version(
            &b.str("extension_id").map_err(store_err)?,
            &b.str("version").map_err(store_err)?,
        )
        .await
    }

    async fn list_versions(&self, extension_id: &str) -> Result<Vec<VersionRecord>, RegistryError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :ver)")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("EXT#{}", keys::part(extension_id))),
                    )
                    .expression_attribute_values(":ver", s("VER#")),
            )
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(self.read_version(item).await?);
        }
        Ok(newest_first(out))
    }

    async fn list_extensions(&self) -> Result<Vec<String>, RegistryError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(EXTENSIONS_PK)),
            )
            .await?;
        items
            .iter()
            .map(|i| Item(i).str("extension_id").map_err(store_err))
            .collect()
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
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(built(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(keys::key(bundle_pk(content), BUNDLE_SK.into())))
                            .condition_expression("attribute_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            )
            .transact_items(put_item(&self.table, artifact_item(artifact), None)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match cancel_codes(&e) {
                Some(codes) if condition_failed(&codes, 0) => {
                    Err(RegistryError::NotFound(format!("bundle {content}")))
                }
                Some(codes) => Err(store_err(StoreError::Unavailable(format!(
                    "put artifact: transaction cancelled ({})",
                    codes.join(", ")
                )))),
                None => Err(store_err(map_sdk("TransactWriteItems (artifact)", &e))),
            },
        }
    }

    async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError> {
        let versions = self.list_versions(&req.extension_id).await?;
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
        check_install_request(&v.manifest_json, req)?;
        let previous_item = self
            .get(install_key(&req.tenant, &req.extension_id))
            .await?;
        let previous = previous_item
            .as_ref()
            .map(recorded_pairs)
            .unwrap_or_default();
        let previous_host = previous_item
            .as_ref()
            .and_then(|item| Item(item).opt_str("host_extension_id").ok().flatten());
        let pairs = manifest_subscriptions(&v.manifest_json);
        if let Some(h) = &req.host_extension_id {
            self.claim_host_extension(h, &req.tenant, &req.extension_id)
                .await?;
        }
        let mut update = String::from(
            "SET #tenant = :tenant, #ext = :ext, #version = :version, \
             #hash = :hash, #requested = :requested, #grants = :grants, \
             #config = :config, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk, #updated = :now, \
             #subs = :subs, #id = if_not_exists(#id, :id), \
             #enabled = if_not_exists(#enabled, :enabled)",
        );
        let mut host_values = Vec::new();
        if let Some(h) = &req.host_extension_id {
            update.push_str(", host_extension_id = :hext");
            host_values.push((":hext", s(h)));
        }
        if let Some(h) = &req.host_install_id {
            update.push_str(", host_install_id = :hinst");
            host_values.push((":hinst", s(h)));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(install_key(&req.tenant, &req.extension_id)))
            .update_expression(update);
        for (name, value) in host_values {
            request = request.expression_attribute_values(name, value);
        }
        let out = request
            // Placeholders for every name: some (`version`, ...) are DynamoDB reserved words.
            .expression_attribute_names("#tenant", "tenant")
            .expression_attribute_names("#ext", "extension_id")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#hash", "content_hash")
            .expression_attribute_names("#requested", "requested")
            .expression_attribute_names("#grants", "operator_grants")
            .expression_attribute_names("#config", "config")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_names("#id", "install_id")
            .expression_attribute_names("#enabled", "enabled")
            .expression_attribute_names("#subs", SUBS_ATTR)
            .expression_attribute_values(":subs", pairs_value(&pairs))
            .expression_attribute_values(":tenant", s(&req.tenant))
            .expression_attribute_values(":ext", s(&req.extension_id))
            .expression_attribute_values(":version", s(&v.version))
            .expression_attribute_values(":hash", s(v.content_hash.to_string()))
            .expression_attribute_values(":requested", s(requested_caps(&v.manifest_json)))
            .expression_attribute_values(
                ":grants",
                s(serde_json::to_string(&req.grants).expect("strings serialize")),
            )
            .expression_attribute_values(
                ":config",
                s(serde_json::to_string(&req.config).expect("strings serialize")),
            )
            .expression_attribute_values(
                ":gsi1pk",
                s(format!("INSTALLS_OF#{}", keys::part(&req.extension_id))),
            )
            .expression_attribute_values(":gsi1sk", s(keys::part(&req.tenant)))
            .expression_attribute_values(":now", n(runtime_core::clock::unix_secs()))
            .expression_attribute_values(":id", s(new_install_id()))
            .expression_attribute_values(":enabled", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| store_err(map_sdk("UpdateItem (install)", &e)))?;
        let record = read_install(&out.attributes.unwrap_or_default())?;
        if let Some(old) = previous_host
            && record.host_extension_id.as_ref() != Some(&old)
        {
            self.release_host_extension(&old, &req.tenant).await?;
        }
        let wanted = if record.enabled { pairs } else { Vec::new() };
        self.sync_subscriptions(&req.tenant, &req.extension_id, &previous, &wanted)
            .await?;
        Ok(record)
    }

    async fn uninstall(&self, tenant: &str, extension_id: &str) -> Result<(), RegistryError> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(install_key(tenant, extension_id)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await
        {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                let previous = recorded_pairs(&old);
                if let Some(h) = Item(&old).opt_str("host_extension_id").map_err(store_err)? {
                    self.release_host_extension(&h, tenant).await?;
                }
                self.sync_subscriptions(tenant, extension_id, &previous, &Vec::new())
                    .await
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(RegistryError::NotFound(format!(
                    "install of {extension_id} for {tenant}"
                )))
            }
            Err(e) => Err(store_err(map_sdk("DeleteItem (install)", &e))),
        }
    }

    async fn set_enabled(
        &self,
        tenant: &str,
        extension_id: &str,
        enabled: bool,
    ) -> Result<InstallRecord, RegistryError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(install_key(tenant, extension_id)))
            .update_expression("SET #enabled = :e, #updated = :now")
            .expression_attribute_names("#enabled", "enabled")
            .expression_attribute_names("#updated", "updated_at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":e", AttributeValue::Bool(enabled))
            .expression_attribute_values(":now", n(runtime_core::clock::unix_secs()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let pairs = recorded_pairs(&item);
                let wanted = if enabled { pairs.clone() } else { Vec::new() };
                self.sync_subscriptions(tenant, extension_id, &pairs, &wanted)
                    .await?;
                read_install(&item)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(RegistryError::NotFound(format!(
                    "install of {extension_id} for {tenant}"
                )))
            }
            Err(e) => Err(store_err(map_sdk("UpdateItem (enable)", &e))),
        }
    }

    async fn get_install(
        &self,
        tenant: &str,
        extension_id: &str,
    ) -> Result<Option<InstallRecord>, RegistryError> {
        match self.get(install_key(tenant, extension_id)).await? {
            Some(item) => Ok(Some(read_install(&item)?)),
            None => Ok(None),
        }
    }

    async fn list_installs(&self, tenant: &str) -> Result<Vec<InstallRecord>, RegistryError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :inst)")
                    .expression_attribute_values(":pk", s(format!("TENANT#{}", keys::part(tenant))))
                    .expression_attribute_values(":inst", s("INSTALL#")),
            )
            .await?;
        items.iter().map(read_install).collect()
    }

    async fn list_installs_by_host_extension(
        &self,
        host_extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        let claims = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .consistent_read(true)
                    .expression_attribute_values(
                        ":pk",
                        s(format!("HOSTEXT#{}", keys::part(host_extension_id))),
                    ),
            )
            .await?;
        let mut out = Vec::new();
        for claim in &claims {
            let i = Item(claim);
            let tenant = i.str("tenant").map_err(store_err)?;
            let extension = i.str("extension_id").map_err(store_err)?;
            // A claim outlives its install only between two writes; skip it then.
            if let Some(item) = self.get(install_key(&tenant, &extension)).await? {
                let record = read_install(&item)?;
                if record.host_extension_id.as_deref() == Some(host_extension_id) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    async fn list_installs_of(
        &self,
        extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        // A GSI read: eventually consistent (DynamoDB offers nothing stronger on indexes).
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("gsi1pk = :pk")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("INSTALLS_OF#{}", keys::part(extension_id))),
                    ),
            )
            .await?;
        items.iter().map(read_install).collect()
    }

    async fn subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<Subscription>, RegistryError> {
        self.query_subscriptions(tenant, topic).await
    }
}
