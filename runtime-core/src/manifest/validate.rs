//! The validating walk over the manifest's JSON.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::route;
use super::{
    ApiSpec, Checked, ENDPOINT_METHODS, Endpoint, EventSubscription, MAX_MANIFEST_BYTES,
    MAX_SCHEDULES, Manifest, ManifestError, ManifestWarning, MenuHook, ScheduleSpec, Strictness,
    UI_KIND_IFRAME, UiHooks, UiSpec, VersionWildcard,
};
use crate::capability::Capability;

const TOP_LEVEL_KEYS: [&str; 11] = [
    "name",
    "version",
    "runtime",
    "publisher",
    "capabilities",
    "ui",
    "api",
    "assets",
    "precompiled",
    "events",
    "schedules",
];
const UI_KEYS: [&str; 3] = ["type", "entry", "hooks"];
const HOOKS_KEYS: [&str; 2] = ["appMenu", "clientPortalMenu"];
const MENU_KEYS: [&str; 1] = ["label"];
const API_KEYS: [&str; 1] = ["endpoints"];
const ENDPOINT_KEYS: [&str; 3] = ["method", "path", "handler"];
const EVENT_KEYS: [&str; 2] = ["topic", "handler"];
const SCHEDULE_KEYS: [&str; 6] = ["endpoint", "cron", "timezone", "name", "payload", "enabled"];

const MAX_NAME_CHARS: usize = 128;
const MAX_RUNTIME_CHARS: usize = 128;
const MAX_PUBLISHER_CHARS: usize = 256;
const MAX_LABEL_CHARS: usize = 128;
const MAX_BUNDLE_PATH_CHARS: usize = 1024;
const MAX_HANDLER_CHARS: usize = 1024;
const MAX_TOPIC_CHARS: usize = 256;
const MAX_CRON_CHARS: usize = 128;
const MAX_TIMEZONE_CHARS: usize = 64;
const MAX_SCHEDULE_NAME_CHARS: usize = 128;
const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

pub(super) fn check(bytes: &[u8], strictness: Strictness) -> Result<Checked, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::new(
            "",
            format!(
                "expected at most {MAX_MANIFEST_BYTES} bytes (256 KiB), found {} bytes",
                bytes.len()
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        ManifestError::new(
            "",
            format!("expected a JSON object, found invalid JSON ({e})"),
        )
    })?;
    reject_duplicate_keys(bytes)?;
    let mut walk = Walk {
        strictness,
        warnings: Vec::new(),
    };
    let (manifest, wildcard) = manifest(&doc, &mut walk)?;
    Ok(Checked {
        manifest,
        wildcard,
        warnings: walk.warnings,
    })
}

/// The mode, and the warnings compatible mode has collected so far.
struct Walk {
    strictness: Strictness,
    warnings: Vec<ManifestWarning>,
}

impl Walk {
    fn strict(&self) -> bool {
        self.strictness == Strictness::Strict
    }

    /// Something Alga accepts without acting on: a warning in compatible mode,
    /// `strict_error` in strict mode.
    fn tolerate(
        &mut self,
        field: String,
        warning: String,
        strict_error: impl FnOnce() -> ManifestError,
    ) -> Result<(), ManifestError> {
        if self.strict() {
            return Err(strict_error());
        }
        self.warnings.push(ManifestWarning {
            field,
            message: warning,
        });
        Ok(())
    }

    /// Unknown keys of `obj`: strict mode refuses the first (in sorted order);
    /// compatible mode warns about each, as Alga's schema drops them. `why` gives a
    /// key-specific reason for the keys Alga's own manifests use.
    fn unknown_keys(
        &mut self,
        obj: &Obj<'_>,
        accepted: &[&str],
        why: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ManifestError> {
        if self.strict() {
            return obj.reject_unknown(accepted);
        }
        let mut unknown: Vec<&String> = obj
            .map
            .keys()
            .filter(|k| !accepted.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            let message = match why(key.as_str()) {
                Some(why) => format!("unknown key {} ignored: {why}", quote(key)),
                None => format!(
                    "unknown key {} ignored (Alga's manifest schema drops unknown keys too); the keys read here are: {}",
                    quote(key),
                    accepted.join(", ")
                ),
            };
            self.warnings.push(ManifestWarning {
                field: obj.at(key),
                message,
            });
        }
        Ok(())
    }
}

/// Why a top-level key of Alga's own manifests is ignored.
fn why_top_level(key: &str) -> Option<String> {
    Some(match key {
        // publish::COMPONENT_PATH (that module needs the compiler feature).
        "entry" => "the component is always dist/main.wasm, here as on Alga's runner (Alga's schema drops this key)"
            .into(),
        "sbom" => "the SBOM is kept in the bundle but not read (Alga's schema does not act on it either)"
            .into(),
        "settings" => "install configuration is given when installing, not declared in the manifest (Alga's schema drops this key)"
            .into(),
        _ => return None,
    })
}

/// `__NAME__`: an unreplaced placeholder of Alga's extension templates.
fn is_placeholder(s: &str) -> bool {
    s.len() > 4
        && s.starts_with("__")
        && s.ends_with("__")
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn placeholder_warning(what: &str, value: &str) -> String {
    format!(
        "{} looks like an unreplaced template placeholder; the {what} is used as written",
        quote(value)
    )
}

/// `"MAJOR.MINOR.*"`, the only wildcard Alga's publish accepts.
fn version_wildcard(version: &str) -> Option<VersionWildcard> {
    let (major, rest) = version.split_once('.')?;
    let (minor, star) = rest.split_once('.')?;
    let number = |s: &str| {
        (!s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse::<u64>().ok())
        .flatten()
    };
    (star == "*").then_some(VersionWildcard {
        major: number(major)?,
        minor: number(minor)?,
    })
}

fn manifest(
    doc: &Value,
    walk: &mut Walk,
) -> Result<(Manifest, Option<VersionWildcard>), ManifestError> {
    let top = Obj::of(doc, String::new(), "a JSON object")?;

    let name = top.required_str("name", "a package name like \"com.example.hello\"")?;
    check_name(name).map_err(|m| top.error("name", m))?;
    if is_placeholder(name) {
        walk.tolerate(top.at("name"), placeholder_warning("name", name), || {
            top.error(
                "name",
                format!(
                    "expected a package name like \"com.example.hello\", found the template placeholder {}",
                    quote(name)
                ),
            )
        })?;
    }

    let raw_version = top.required_str("version", "a semantic version like \"1.2.3\"")?;
    let (version, wildcard) = match semver::Version::parse(raw_version) {
        Ok(v) => (v, None),
        Err(e) => match version_wildcard(raw_version).filter(|_| !walk.strict()) {
            // Resolved when publishing; the resolution is the warning.
            Some(w) => (semver::Version::new(w.major, w.minor, 0), Some(w)),
            None => {
                return Err(top.error(
                    "version",
                    format!(
                        "expected a semantic version like \"1.2.3\", found {} ({e})",
                        quote(raw_version)
                    ),
                ));
            }
        },
    };

    let runtime = top.required_str("runtime", "a runtime like \"wasm-js@1\"")?;
    check_runtime(runtime).map_err(|m| top.error("runtime", m))?;

    walk.unknown_keys(&top, &TOP_LEVEL_KEYS, why_top_level)?;

    let publisher = match top.optional("publisher") {
        None => None,
        Some(v) => {
            let s = expect_str(v, &top.at("publisher"), "a publisher name")?;
            check_text(s, MAX_PUBLISHER_CHARS, "a publisher name")
                .map_err(|m| top.error("publisher", m))?;
            Some(s.to_string())
        }
    };

    let capabilities = match top.optional("capabilities") {
        None => Vec::new(),
        Some(v) => capabilities(v, &top.at("capabilities"), walk)?,
    };
    let ui = top
        .optional("ui")
        .map(|v| ui(v, top.at("ui"), walk))
        .transpose()?;
    let api = top
        .optional("api")
        .map(|v| api(v, top.at("api"), walk))
        .transpose()?;
    let assets = top.optional("assets").cloned();
    let precompiled = top.optional("precompiled").cloned();
    let events = match top.optional("events") {
        None => Vec::new(),
        Some(v) => events(v, &top.at("events"), walk)?,
    };
    let endpoints = api.as_ref().map_or(&[][..], |a| a.endpoints.as_slice());
    let schedules = match top.optional("schedules") {
        None => Vec::new(),
        Some(v) => schedules(v, &top.at("schedules"), endpoints, walk)?,
    };

    let manifest = Manifest {
        name: name.to_string(),
        version,
        runtime: runtime.to_string(),
        publisher,
        capabilities,
        ui,
        api,
        assets,
        precompiled,
        events,
        schedules,
    };
    Ok((manifest, wildcard))
}

fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if count == 0 {
        return Err(format!(
            "expected 1 to {MAX_NAME_CHARS} characters, found an empty string"
        ));
    }
    if count > MAX_NAME_CHARS {
        return Err(format!(
            "expected at most {MAX_NAME_CHARS} characters, found {count}"
        ));
    }
    let first = name.chars().next().unwrap_or_default();
    // '_' opens Alga's template placeholders (`__PACKAGE_NAME__`).
    if !(first.is_ascii_alphanumeric() || first == '@' || first == '_') {
        return Err(format!(
            "expected a name starting with an ASCII letter, digit, '@' or '_', found {}",
            quote(name)
        ));
    }
    if let Some((i, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || ".-_@/".contains(*c)))
    {
        return Err(format!(
            "expected only ASCII letters, digits and . - _ @ /, found {c:?} at character {} of {}",
            i + 1,
            quote(name)
        ));
    }
    Ok(())
}

fn check_runtime(runtime: &str) -> Result<(), String> {
    if runtime.is_empty() {
        return Err("expected a runtime like \"wasm-js@1\", found an empty string".into());
    }
    if runtime.chars().count() > MAX_RUNTIME_CHARS {
        return Err(format!(
            "expected at most {MAX_RUNTIME_CHARS} characters, found {}",
            runtime.chars().count()
        ));
    }
    if runtime.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "expected a runtime like \"wasm-js@1\" without spaces or control characters, found {}",
            quote(runtime)
        ));
    }
    Ok(())
}

/// Non-blank, at most `max` characters, no control characters.
fn check_text(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("expected {what}, found {}", describe_str(s)));
    }
    let count = s.chars().count();
    if count > max {
        return Err(format!(
            "expected {what} of at most {max} characters, found {count} characters"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "expected {what} without control characters, found {}",
            quote(s)
        ));
    }
    Ok(())
}

fn capabilities(
    value: &Value,
    path: &str,
    walk: &mut Walk,
) -> Result<Vec<Capability>, ManifestError> {
    let items = expect_array(value, path, "an array of capability strings")?;
    let mut caps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = index(path, i);
        let raw = expect_str(item, &field, "a capability string like \"cap:storage.kv\"")?;
        let unknown = || {
            let valid: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            ManifestError::new(
                field.clone(),
                format!(
                    "unknown capability {}; expected one of: {}",
                    quote(raw),
                    valid.join(", ")
                ),
            )
        };
        let Some(cap) = Capability::parse(raw) else {
            // Alga stores any string and its install grants only the `cap:` names
            // it knows, so the prefix-less form (its manifest docs' example) is
            // requested nowhere: the same here, with a hint.
            let prefixed = format!("cap:{}", raw.trim());
            match Capability::parse(&prefixed) {
                Some(meant) => walk.tolerate(
                    field.clone(),
                    format!(
                        "{} is not a capability name, so it is not requested (Alga's install drops it too); write \"{meant}\" to request it",
                        quote(raw)
                    ),
                    unknown,
                )?,
                None => return Err(unknown()),
            }
            continue;
        };
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    Ok(caps)
}

fn ui(value: &Value, path: String, walk: &mut Walk) -> Result<UiSpec, ManifestError> {
    let obj = Obj::of(
        value,
        path,
        "an object like {\"type\": \"iframe\", \"entry\": \"ui/index.html\"}",
    )?;
    walk.unknown_keys(&obj, &UI_KEYS, |key| {
        (key == "routes").then(|| {
            "the iframe does its own routing from ui.entry (Alga's schema drops this key)".into()
        })
    })?;
    let kind = obj.required_str("type", "\"iframe\"")?;
    if kind != UI_KIND_IFRAME {
        return Err(obj.error(
            "type",
            format!("expected \"{UI_KIND_IFRAME}\", found {}", quote(kind)),
        ));
    }
    let entry = obj.required_str("entry", "a relative path like \"ui/index.html\"")?;
    check_bundle_path(entry).map_err(|m| obj.error("entry", m))?;
    let hooks = obj
        .optional("hooks")
        .map(|v| hooks(v, obj.at("hooks"), walk))
        .transpose()?;
    Ok(UiSpec {
        kind: kind.to_string(),
        entry: entry.to_string(),
        hooks,
    })
}

/// A file inside the bundle: relative, `/`-separated, no empty, `.` or `..` segments,
/// nothing hidden, no backslashes or control characters.
fn check_bundle_path(path: &str) -> Result<(), String> {
    let expected = "expected a relative path inside the bundle like \"ui/index.html\"";
    let found = quote(path);
    if path.is_empty() {
        return Err(format!("{expected}, found an empty string"));
    }
    if path.chars().count() > MAX_BUNDLE_PATH_CHARS {
        return Err(format!(
            "expected at most {MAX_BUNDLE_PATH_CHARS} characters, found {}",
            path.chars().count()
        ));
    }
    if path.starts_with('/') {
        return Err(format!("{expected} (no leading '/'), found {found}"));
    }
    if path.contains('\\') {
        return Err(format!(
            "{expected} with '/' separators (no '\\'), found {found}"
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "{expected} without control characters, found {found}"
        ));
    }
    for segment in path.split('/') {
        if segment.is_empty() {
            return Err(format!(
                "{expected} without empty segments or a trailing '/', found {found}"
            ));
        }
        if segment == ".." || segment == "." {
            return Err(format!(
                "{expected} without '.' or '..' segments, found {found}"
            ));
        }
        if segment.starts_with('.') {
            return Err(format!(
                "{expected} without hidden ('.'-prefixed) segments, found {found}"
            ));
        }
    }
    Ok(())
}

fn hooks(value: &Value, path: String, walk: &mut Walk) -> Result<UiHooks, ManifestError> {
    let obj = Obj::of(
        value,
        path,
        "an object like {\"appMenu\": {\"label\": \"...\"}}",
    )?;
    // Alga's schema passes other hooks through (`catchall`) but shows only these two.
    walk.unknown_keys(&obj, &HOOKS_KEYS, |_| {
        Some("only the appMenu and clientPortalMenu hooks are shown (Alga keeps others without acting on them)".into())
    })?;
    let app_menu = obj
        .optional("appMenu")
        .map(|v| menu(v, obj.at("appMenu"), walk))
        .transpose()?;
    let client_portal_menu = obj
        .optional("clientPortalMenu")
        .map(|v| menu(v, obj.at("clientPortalMenu"), walk))
        .transpose()?;
    Ok(UiHooks {
        app_menu,
        client_portal_menu,
    })
}

fn menu(value: &Value, path: String, walk: &mut Walk) -> Result<MenuHook, ManifestError> {
    let obj = Obj::of(value, path, "an object like {\"label\": \"...\"}")?;
    walk.unknown_keys(&obj, &MENU_KEYS, |_| None)?;
    let label = obj.required_str("label", "a menu label")?;
    check_text(label, MAX_LABEL_CHARS, "a menu label").map_err(|m| obj.error("label", m))?;
    if is_placeholder(label) {
        walk.tolerate(
            obj.at("label"),
            placeholder_warning("menu label", label),
            || {
                obj.error(
                    "label",
                    format!(
                        "expected a menu label, found the template placeholder {}",
                        quote(label)
                    ),
                )
            },
        )?;
    }
    Ok(MenuHook {
        label: label.to_string(),
    })
}

fn api(value: &Value, path: String, walk: &mut Walk) -> Result<ApiSpec, ManifestError> {
    let obj = Obj::of(value, path, "an object like {\"endpoints\": [...]}")?;
    walk.unknown_keys(&obj, &API_KEYS, |_| None)?;
    let list_path = obj.at("endpoints");
    let items = expect_array(
        obj.required("endpoints", "an array of endpoints")?,
        &list_path,
        "an array of endpoints",
    )?;
    let mut endpoints: Vec<Endpoint> = Vec::with_capacity(items.len());
    let mut shapes: Vec<(String, String)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = index(&list_path, i);
        let endpoint = endpoint(item, field.clone(), walk)?;
        let key = (endpoint.method.clone(), route::shape(&endpoint.path));
        if let Some(j) = shapes.iter().position(|k| *k == key) {
            return Err(ManifestError::new(
                field,
                format!(
                    "expected each method and path once, found {} {} which matches the same requests as {}",
                    endpoint.method,
                    endpoint.path,
                    index(&list_path, j)
                ),
            ));
        }
        shapes.push(key);
        endpoints.push(endpoint);
    }
    Ok(ApiSpec { endpoints })
}

fn endpoint(value: &Value, path: String, walk: &mut Walk) -> Result<Endpoint, ManifestError> {
    let obj = Obj::of(
        value,
        path,
        "an object like {\"method\": \"GET\", \"path\": \"/api/x\", \"handler\": \"dist/main.wasm\"}",
    )?;
    walk.unknown_keys(&obj, &ENDPOINT_KEYS, |key| {
        (key == "schedulable").then(|| why_schedulable(&obj))
    })?;
    let method = obj.required_str("method", "an HTTP method like \"GET\"")?;
    let normalised = method.trim().to_ascii_uppercase();
    if !ENDPOINT_METHODS.contains(&normalised.as_str()) {
        return Err(obj.error(
            "method",
            format!(
                "expected one of {}, found {}",
                ENDPOINT_METHODS.join(", "),
                quote(method)
            ),
        ));
    }
    let route_path = obj.required_str("path", "a path like \"/api/items/:id\"")?;
    route::check_pattern(route_path).map_err(|m| obj.error("path", m))?;
    let handler = obj.required_str("handler", "a handler like \"dist/main.wasm\"")?;
    check_text(
        handler,
        MAX_HANDLER_CHARS,
        "a handler like \"dist/main.wasm\"",
    )
    .map_err(|m| obj.error("handler", m))?;
    Ok(Endpoint {
        method: normalised,
        path: route_path.to_string(),
        handler: handler.to_string(),
    })
}

fn events(
    value: &Value,
    path: &str,
    walk: &mut Walk,
) -> Result<Vec<EventSubscription>, ManifestError> {
    let items = expect_array(value, path, "an array of {\"topic\", \"handler\"} objects")?;
    let mut events: Vec<EventSubscription> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = Obj::of(
            item,
            index(path, i),
            "an object like {\"topic\": \"ticket.created\", \"handler\": \"/api/on-ticket\"}",
        )?;
        walk.unknown_keys(&obj, &EVENT_KEYS, |_| None)?;
        let topic = obj.required_str("topic", "an event topic like \"ticket.created\"")?;
        check_topic(topic).map_err(|m| obj.error("topic", m))?;
        let handler = obj.required_str("handler", "an endpoint path like \"/api/on-event\"")?;
        if let Err(m) = route::check_concrete(handler) {
            if !is_file_handler(handler) {
                return Err(obj.error("handler", m));
            }
            // Alga's manifest docs name a handler file (`dist/x.wasm#handle`); Alga
            // never delivers `events`, and this runtime delivers them only to an
            // endpoint, so such a subscription is dropped.
            walk.tolerate(
                obj.at("handler"),
                format!(
                    "{} names a bundle file, not an endpoint path; this subscription is ignored (Alga does not deliver manifest events either); to receive {} events name an endpoint like \"/api/on-event\"",
                    quote(handler),
                    quote(topic)
                ),
                || obj.error("handler", m),
            )?;
            continue;
        }
        let event = EventSubscription {
            topic: topic.to_string(),
            handler: handler.to_string(),
        };
        if let Some(j) = events.iter().position(|e| *e == event) {
            return Err(ManifestError::new(
                obj.path.clone(),
                format!(
                    "expected each topic and handler once, found the same as {}",
                    index(path, j)
                ),
            ));
        }
        events.push(event);
    }
    Ok(events)
}

fn check_topic(topic: &str) -> Result<(), String> {
    let count = topic.chars().count();
    if count == 0 {
        return Err(format!(
            "expected 1 to {MAX_TOPIC_CHARS} characters, found an empty string"
        ));
    }
    if count > MAX_TOPIC_CHARS {
        return Err(format!(
            "expected at most {MAX_TOPIC_CHARS} characters, found {count}"
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:/-".contains(*c)))
    {
        return Err(format!(
            "expected only ASCII letters, digits and . _ : / -, found {c:?} in {}",
            quote(topic)
        ));
    }
    Ok(())
}

fn schedules(
    value: &Value,
    path: &str,
    endpoints: &[Endpoint],
    walk: &mut Walk,
) -> Result<Vec<ScheduleSpec>, ManifestError> {
    let items = expect_array(value, path, "an array of schedules")?;
    if items.len() > MAX_SCHEDULES {
        return Err(ManifestError::new(
            path,
            format!(
                "expected at most {MAX_SCHEDULES} schedules, found {}",
                items.len()
            ),
        ));
    }
    let mut schedules: Vec<ScheduleSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = Obj::of(
            item,
            index(path, i),
            "an object like {\"endpoint\": \"POST /api/sync\", \"cron\": \"0 * * * *\"}",
        )?;
        walk.unknown_keys(&obj, &SCHEDULE_KEYS, |_| None)?;

        let selector = obj.required_str("endpoint", "an endpoint like \"POST /api/sync\"")?;
        let endpoint =
            schedule_endpoint(selector, endpoints).map_err(|m| obj.error("endpoint", m))?;

        let cron = obj.required_str("cron", "a 5-field cron expression like \"0 * * * *\"")?;
        let cron = check_cron(cron).map_err(|m| obj.error("cron", m))?;

        let timezone = match obj.optional("timezone") {
            None => None,
            Some(v) => {
                let tz = expect_str(v, &obj.at("timezone"), "a time zone like \"Europe/Berlin\"")?;
                check_timezone(tz).map_err(|m| obj.error("timezone", m))?;
                Some(tz.to_string())
            }
        };

        let name = match obj.optional("name") {
            None => None,
            Some(v) => {
                let name = expect_str(v, &obj.at("name"), "a schedule name")?;
                check_text(name, MAX_SCHEDULE_NAME_CHARS, "a schedule name")
                    .map_err(|m| obj.error("name", m))?;
                if let Some(j) = schedules
                    .iter()
                    .position(|s| s.name.as_deref() == Some(name))
                {
                    return Err(obj.error(
                        "name",
                        format!(
                            "expected a unique schedule name, found {} already used by {}",
                            quote(name),
                            index(path, j)
                        ),
                    ));
                }
                Some(name.to_string())
            }
        };

        let payload = match obj.optional("payload") {
            None => None,
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.clone()),
            Some(v) => {
                return Err(obj.error(
                    "payload",
                    format!("expected a JSON object or array, found {}", describe(v)),
                ));
            }
        };

        let enabled = match obj.optional("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                return Err(obj.error(
                    "enabled",
                    format!("expected true or false, found {}", describe(v)),
                ));
            }
        };

        schedules.push(ScheduleSpec {
            endpoint,
            cron,
            timezone,
            name,
            payload,
            enabled,
        });
    }
    Ok(schedules)
}

/// Resolves `"[METHOD ]/path"` to a declared schedulable endpoint, as `"METHOD /path"`.
fn schedule_endpoint(selector: &str, endpoints: &[Endpoint]) -> Result<String, String> {
    let trimmed = selector.trim();
    let (method, path) = if trimmed.starts_with('/') {
        (None, trimmed)
    } else {
        match trimmed.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m.to_ascii_uppercase()), p.trim_start()),
            None => {
                return Err(format!(
                    "expected \"[METHOD ]/path\" like \"POST /api/sync\", found {}",
                    describe_str(selector)
                ));
            }
        }
    };
    if let Some(m) = &method
        && m != "GET"
        && m != "POST"
    {
        return Err(format!(
            "expected GET or POST (only those endpoints can be scheduled), found {}",
            quote(m)
        ));
    }
    route::check_concrete(path)?;
    let candidates: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| e.is_schedulable() && e.path == path)
        .filter(|e| method.as_deref().is_none_or(|m| e.method == m))
        .collect();
    // Without a method the GET endpoint wins over the POST one, as the scheduler
    // resolves a guest's method-less selector (schedule::validate).
    let chosen = candidates
        .iter()
        .find(|e| e.method == "GET")
        .or(candidates.first());
    match chosen {
        Some(one) => Ok(format!("{} {}", one.method, one.path)),
        None => {
            let declared: Vec<String> = endpoints
                .iter()
                .filter(|e| e.is_schedulable())
                .map(|e| format!("{} {}", e.method, e.path))
                .collect();
            let declared = if declared.is_empty() {
                "none are declared".to_string()
            } else {
                format!("declared: {}", declared.join(", "))
            };
            Err(format!(
                "expected a GET or POST endpoint without parameters declared in api.endpoints ({declared}), found {}",
                quote(selector)
            ))
        }
    }
}

/// Why `schedulable` is ignored on this endpoint (read from its raw method and path,
/// as the unknown keys are reported before the endpoint is checked).
fn why_schedulable(obj: &Obj<'_>) -> String {
    let raw = |key: &str| obj.map.get(key).and_then(Value::as_str).unwrap_or_default();
    let method = raw("method").trim().to_ascii_uppercase();
    let path = raw("path");
    let params = route::pattern_segments(path).any(|s| s.is_param());
    let verdict = if !matches!(method.as_str(), "GET" | "POST") {
        format!("so this {method} endpoint cannot be")
    } else if params {
        "so this endpoint, with path parameters, cannot be".to_string()
    } else {
        "this one included".to_string()
    };
    format!(
        "no flag is needed: any GET or POST endpoint without path parameters can be scheduled, {verdict} (Alga's schema drops this key)"
    )
}

/// Alga's file-handler form: a bundle path, optionally with `#export`.
fn is_file_handler(handler: &str) -> bool {
    let (file, export) = match handler.split_once('#') {
        Some((file, export)) => (file, Some(export)),
        None => (handler, None),
    };
    let export_ok = export.is_none_or(|e| {
        !e.is_empty()
            && e.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    });
    (export.is_some() || file.ends_with(".wasm")) && export_ok && check_bundle_path(file).is_ok()
}

/// Checks the shape of a 5-field cron expression; returns it with single spaces.
fn check_cron(cron: &str) -> Result<String, String> {
    if cron.chars().count() > MAX_CRON_CHARS {
        return Err(format!(
            "expected at most {MAX_CRON_CHARS} characters, found {}",
            cron.chars().count()
        ));
    }
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != CRON_FIELDS.len() {
        return Err(format!(
            "expected 5 fields ({}), found {} in {}",
            CRON_FIELDS.join(" "),
            fields.len(),
            quote(cron)
        ));
    }
    for (field, label) in fields.iter().zip(CRON_FIELDS) {
        if let Some(c) = field
            .chars()
            .find(|c| !(c.is_ascii_digit() || "*/,-".contains(*c)))
        {
            return Err(format!(
                "expected the {label} field to use only digits and * / , -, found {c:?} in {}",
                quote(field)
            ));
        }
    }
    Ok(fields.join(" "))
}

fn check_timezone(tz: &str) -> Result<(), String> {
    let count = tz.chars().count();
    if count == 0 || count > MAX_TIMEZONE_CHARS {
        return Err(format!(
            "expected a time zone name of 1 to {MAX_TIMEZONE_CHARS} characters like \"Europe/Berlin\", found {}",
            describe_str(tz)
        ));
    }
    if let Some(c) = tz
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+-/".contains(*c)))
    {
        return Err(format!(
            "expected a time zone name like \"Europe/Berlin\", found {c:?} in {}",
            quote(tz)
        ));
    }
    // The same database the scheduler fires by, so publish refuses what could never run.
    crate::clock::zone::Zone::parse(tz)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An object being validated, with its JSON path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn of(value: &'a Value, path: String, expected: &str) -> Result<Self, ManifestError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(ManifestError::new(
                path,
                format!("expected {expected}, found {}", describe(other)),
            )),
        }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ManifestError {
        ManifestError::new(self.at(key), message)
    }

    /// Reports the first unknown key (in sorted order), listing the accepted ones.
    fn reject_unknown(&self, accepted: &[&str]) -> Result<(), ManifestError> {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !accepted.contains(&k.as_str()))
            .collect();
        unknown.sort();
        let Some(first) = unknown.first() else {
            return Ok(());
        };
        let also = if unknown.len() > 1 {
            let rest: Vec<String> = unknown[1..].iter().map(|k| quote(k)).collect();
            format!(" (also unknown: {})", rest.join(", "))
        } else {
            String::new()
        };
        Err(self.error(
            first,
            format!(
                "unknown key {}{also}; expected only: {}",
                quote(first),
                accepted.join(", ")
            ),
        ))
    }

    /// A present key's value (may be `null`).
    fn required(&self, key: &str, expected: &str) -> Result<&'a Value, ManifestError> {
        self.map
            .get(key)
            .ok_or_else(|| self.error(key, format!("required key is missing; expected {expected}")))
    }

    fn required_str(&self, key: &str, expected: &str) -> Result<&'a str, ManifestError> {
        expect_str(self.required(key, expected)?, &self.at(key), expected)
    }

    /// An optional key's value; `null` counts as absent.
    fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
}

fn expect_str<'v>(value: &'v Value, field: &str, expected: &str) -> Result<&'v str, ManifestError> {
    value.as_str().ok_or_else(|| {
        ManifestError::new(
            field,
            format!("expected {expected} (a string), found {}", describe(value)),
        )
    })
}

fn expect_array<'v>(
    value: &'v Value,
    field: &str,
    expected: &str,
) -> Result<&'v Vec<Value>, ManifestError> {
    value.as_array().ok_or_else(|| {
        ManifestError::new(
            field,
            format!("expected {expected}, found {}", describe(value)),
        )
    })
}

/// `parent.key`, or `parent["odd key"]` when the key is not a plain identifier.
pub(super) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    match (plain, parent.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", quote(key)),
    }
}

pub(super) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A string as a JSON literal, shortened past 80 characters.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 80;
    let shown: String = s.chars().take(MAX).collect();
    let literal = serde_json::to_string(&shown).unwrap_or_default();
    if shown.len() < s.len() {
        format!("{literal}…")
    } else {
        literal
    }
}

fn describe_str(s: &str) -> String {
    if s.is_empty() {
        "an empty string".to_string()
    } else {
        quote(s)
    }
}

/// A short description of a JSON value for "found ..." messages.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => describe_str(s),
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        Value::Object(o) => format!("an object with {} key(s)", o.len()),
    }
}

/// Duplicate keys are ambiguous (parsers disagree on which copy wins): refuse them,
/// naming the path of the repeated key.
fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), ManifestError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walk = DuplicateKeys {
        path: String::new(),
        found: &found,
    };
    match walk.deserialize(&mut de) {
        Ok(()) => Ok(()),
        Err(e) => Err(found
            .into_inner()
            .unwrap_or_else(|| ManifestError::new("", format!("invalid JSON ({e})")))),
    }
}

struct DuplicateKeys<'f> {
    path: String,
    found: &'f RefCell<Option<ManifestError>>,
}

impl<'de> DeserializeSeed<'de> for DuplicateKeys<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DuplicateKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(DuplicateKeys {
                path: index(&self.path, i),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if seen.contains(&key) {
                *self.found.borrow_mut() = Some(ManifestError::new(
                    path,
                    format!("expected each key once, found {} twice", quote(&key)),
                ));
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(DuplicateKeys {
                path,
                found: self.found,
            })?;
            seen.insert(key);
        }
        Ok(())
    }
}
