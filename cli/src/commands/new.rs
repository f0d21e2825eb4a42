//! `alga-lambda new NAME [--template js|ts] [--capabilities …]`: a new extension
//! folder that builds with `npm run build` and runs with `alga-lambda up NAME`.
//!
//! The templates are files under `cli/templates/`, embedded in the binary with
//! `include_str!` (nothing is fetched); the WIT is the repository's own `wit/`,
//! embedded the same way, so a new extension builds against exactly the contract
//! this runtime serves. Package versions are the exact pins of `examples/hello`
//! (jco and componentize-js, the preview2-shim override; the ts template adds
//! typescript at the version jco itself pins, so both install the same tree).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use runtime_core::Capability;

use crate::Failure;

/// Which language the handler is written in.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// TypeScript, type-checked against declarations generated from the WIT.
    Ts,
    /// JavaScript.
    Js,
}

/// Arguments of `new`.
#[derive(Args)]
#[command(
    after_help = "Then: alga-lambda up NAME (installs the npm packages on first use, \
builds, publishes and serves it on http://127.0.0.1:8787). NAME/README.md says the rest."
)]
pub struct NewArgs {
    /// The folder to create (it must not exist, or be empty).
    name: PathBuf,
    /// The handler's language.
    #[arg(long, value_enum, default_value = "ts")]
    template: Template,
    /// The capabilities the manifest asks for, comma-separated (cap:context.read and
    /// cap:log.emit are always added) [default: cap:storage.kv].
    #[arg(long, value_delimiter = ',', value_name = "CAP,...")]
    capabilities: Vec<String>,
    /// The extension id in manifest.json [default: the folder's name].
    #[arg(long, value_name = "ID")]
    id: Option<String>,
}

/// One file of a template: its path in the new folder and its text.
type File = (&'static str, &'static str);

const COMMON: &[File] = &[
    (
        "README.md",
        include_str!("../../templates/common/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/common/gitignore"),
    ),
    (
        "bundle.config.js",
        include_str!("../../templates/common/bundle.config.js"),
    ),
    (
        "ui/index.html",
        include_str!("../../templates/common/ui/index.html"),
    ),
    (
        "ui/bridge.js",
        include_str!("../../templates/common/ui/bridge.js"),
    ),
    (
        "ui/main.js",
        include_str!("../../templates/common/ui/main.js"),
    ),
    (
        "ui/style.css",
        include_str!("../../templates/common/ui/style.css"),
    ),
    (
        "wit/extension-runner.wit",
        include_str!("../../../wit/extension-runner.wit"),
    ),
    (
        "wit/runner-plus.wit",
        include_str!("../../../wit/runner-plus.wit"),
    ),
    ("wit/events.wit", include_str!("../../../wit/events.wit")),
    ("wit/metrics.wit", include_str!("../../../wit/metrics.wit")),
];

const JS: &[File] = &[
    (
        "package.json",
        include_str!("../../templates/js/package.json"),
    ),
    (
        "src/handler.js",
        include_str!("../../templates/js/src/handler.js"),
    ),
    (
        "src/router.js",
        include_str!("../../templates/js/src/router.js"),
    ),
];

const TS: &[File] = &[
    (
        "package.json",
        include_str!("../../templates/ts/package.json"),
    ),
    (
        "tsconfig.json",
        include_str!("../../templates/ts/tsconfig.json"),
    ),
    (
        "src/handler.ts",
        include_str!("../../templates/ts/src/handler.ts"),
    ),
    (
        "src/router.ts",
        include_str!("../../templates/ts/src/router.ts"),
    ),
    (
        "src/globals.d.ts",
        include_str!("../../templates/ts/src/globals.d.ts"),
    ),
];

/// Capabilities every new manifest lists (always granted; the template uses them).
const BASE: [Capability; 2] = [Capability::ContextRead, Capability::LogEmit];

/// Runs `new`.
pub fn new(args: NewArgs) -> crate::Outcome {
    let dir = &args.name;
    let folder = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(String::from)
        .ok_or_else(|| {
            Failure::from(anyhow::anyhow!("{} names no folder", dir.display()))
                .code("usage")
                .fix("give a folder name, e.g. alga-lambda new my-extension")
        })?;
    let id = args.id.clone().unwrap_or_else(|| folder.clone());
    check_id(&id).map_err(|why| {
        Failure::from(anyhow::anyhow!("extension id {id:?} is not valid: {why}"))
            .code("invalid_id")
            .fix("pass --id com.example.my-extension, or pick a folder name of ASCII letters, digits, '.', '-' and '_'")
    })?;
    let capabilities = capabilities(&args.capabilities)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::from(anyhow::anyhow!(
            "{} already exists and is not empty",
            dir.display()
        ))
        .code("already_exists")
        .fix("choose another name, or remove the folder"));
    }

    let files = render(args.template, &id, &folder, &capabilities);
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    let language = match args.template {
        Template::Ts => "TypeScript",
        Template::Js => "JavaScript",
    };
    println!("created {} ({language}, extension {id})", dir.display());
    for (path, _) in &files {
        println!("  {path}");
    }
    println!();
    println!("next:");
    println!(
        "  alga-lambda up {}    npm install (first time), build, publish, serve on http://127.0.0.1:8787",
        shell_word(dir)
    );
    println!(
        "  then edit {}/src/handler.{} (up --watch rebuilds on save)",
        shell_word(dir),
        ext(args.template)
    );
    Ok(ExitCode::SUCCESS)
}

fn ext(t: Template) -> &'static str {
    match t {
        Template::Ts => "ts",
        Template::Js => "js",
    }
}

/// The path as a shell word (quoted when it needs to be).
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The manifest's capability list: the base ones, then those asked for.
fn capabilities(asked: &[String]) -> Result<Vec<Capability>, Failure> {
    let asked: Vec<&str> = asked
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let mut caps: Vec<Capability> = BASE.to_vec();
    let mut unknown = Vec::new();
    let wanted: Vec<Capability> = if asked.is_empty() {
        vec![Capability::StorageKv]
    } else {
        asked
            .iter()
            .filter_map(|a| {
                // `storage.kv` is accepted for `cap:storage.kv`.
                let full = if a.starts_with("cap:") {
                    a.to_string()
                } else {
                    format!("cap:{a}")
                };
                let c = Capability::parse(&full);
                if c.is_none() {
                    unknown.push(a.to_string());
                }
                c
            })
            .collect()
    };
    if !unknown.is_empty() {
        let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
        return Err(Failure::from(anyhow::anyhow!(
            "unknown capabilit{} {}",
            if unknown.len() == 1 { "y" } else { "ies" },
            unknown.join(", ")
        ))
        .code("unknown_capabilities")
        .fix(format!("choose from {}", known.join(", "))));
    }
    for c in wanted {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// An extension id the manifest accepts: 1 to 128 characters of ASCII letters,
/// digits and `. - _ @ /`, starting with a letter or digit.
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 128 {
        return Err("expected 1 to 128 characters");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or digit");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_@/".contains(c))
    {
        return Err("only ASCII letters, digits and . - _ @ / are allowed");
    }
    Ok(())
}

/// An npm package name for the id: lower case, `[a-z0-9._-]`.
fn npm_name(id: &str) -> String {
    let name: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches(['.', '_', '-']).to_string()
}

/// A title for the UI: the id's last segment, words capitalised.
fn title(id: &str) -> String {
    let last = id.rsplit(['.', '/']).next().unwrap_or(id);
    last.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every file of the new folder, placeholders filled in.
fn render(
    template: Template,
    id: &str,
    folder: &str,
    caps: &[Capability],
) -> Vec<(String, String)> {
    let own = match template {
        Template::Ts => TS,
        Template::Js => JS,
    };
    let (language, ts_rows, ts_build) = match template {
        Template::Ts => (
            "TypeScript",
            "| `tsconfig.json`, `src/globals.d.ts` | the TypeScript settings; the web globals the engine has |\n\
             | `types/` | declarations generated from `wit/` by `npm run types` (jco guest-types; `npm install` runs it) |\n",
            " (types from `wit/`, `tsc` into `build/`, then jco)",
        ),
        Template::Js => ("JavaScript", "", ""),
    };
    let title = title(id);
    let fill = |text: &str, path: &str| {
        // The id is checked to be plain ASCII without quotes; the title is made
        // from it. HTML gets the escaped title anyway.
        let shown_title = if path.ends_with(".html") {
            html_escape(&title)
        } else {
            title.clone()
        };
        text.replace("{{extension_id}}", id)
            .replace("{{npm_name}}", &npm_name(id))
            .replace("{{title}}", &shown_title)
            .replace("{{dir}}", folder)
            .replace("{{language}}", language)
            .replace("{{template}}", ext(template))
            .replace("{{ext}}", ext(template))
            .replace("{{ts_rows}}", ts_rows)
            .replace("{{ts_build}}", ts_build)
    };
    let mut files: Vec<(String, String)> =
        vec![("manifest.json".into(), manifest(id, &title, caps))];
    for (path, text) in COMMON.iter().chain(own) {
        files.push((path.to_string(), fill(text, path)));
    }
    files
}

/// manifest.json: the two endpoints, the UI, the capabilities.
fn manifest(id: &str, title: &str, caps: &[Capability]) -> String {
    let caps: Vec<&str> = caps.iter().map(|c| c.as_str()).collect();
    let value = serde_json::json!({
        "name": id,
        "publisher": "Your name",
        "version": "0.1.0",
        "runtime": "wasm-js@1",
        "capabilities": caps,
        "ui": { "type": "iframe", "entry": "ui/index.html", "hooks": { "appMenu": { "label": title } } },
        "api": {
            "endpoints": [
                { "method": "GET", "path": "/api/hello", "handler": "dist/main.wasm" },
                { "method": "POST", "path": "/api/counter", "handler": "dist/main.wasm" }
            ]
        }
    });
    serde_json::to_string_pretty(&value).expect("a JSON value") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_titles() {
        assert!(check_id("my-ext").is_ok());
        assert!(check_id("com.acme.tickets").is_ok());
        assert!(check_id("-x").is_err());
        assert!(check_id("a b").is_err());
        assert_eq!(npm_name("com.Acme/Tickets"), "com.acme-tickets");
        assert_eq!(title("com.acme.ticket-board"), "Ticket Board");
    }

    #[test]
    fn capabilities_default_to_storage_and_refuse_unknown_ones() {
        let names = |c: Vec<Capability>| c.iter().map(|c| c.as_str()).collect::<Vec<_>>();
        assert_eq!(
            names(capabilities(&[]).ok().unwrap()),
            ["cap:context.read", "cap:log.emit", "cap:storage.kv"]
        );
        assert_eq!(
            names(
                capabilities(&["http.fetch".into(), "cap:secrets.get".into()])
                    .ok()
                    .unwrap()
            ),
            [
                "cap:context.read",
                "cap:log.emit",
                "cap:http.fetch",
                "cap:secrets.get"
            ]
        );
        assert!(capabilities(&["cap:everything".into()]).is_err());
    }

    #[test]
    fn every_placeholder_is_filled_and_the_manifest_is_valid() {
        for t in [Template::Js, Template::Ts] {
            let files = render(t, "com.example.demo", "demo", &BASE);
            for (path, text) in &files {
                assert!(!text.contains("{{"), "{path} keeps a placeholder");
            }
            let manifest = &files.iter().find(|(p, _)| p == "manifest.json").unwrap().1;
            runtime_core::manifest::Manifest::parse(manifest.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
