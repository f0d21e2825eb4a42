//! Errors a person can act on: every failure is one line `error[code]: what
//! happened — what to do`, the detail only with `-v`. The AWS cases run the CLI on
//! the AWS backends against a real moto server (the real SDK clients produce the
//! errors); throttling, which moto never does, comes from a peer answering
//! DynamoDB's own throttling document.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use test_support::moto::{self, Moto};

const BIN: &str = env!("CARGO_BIN_EXE_alga-lambda");

/// Runs the CLI with exactly `env` (and HOME in `dir`, which has no AWS files).
fn alga(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir)
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one line a failure prints, checked for its shape.
fn one_line(o: &Output, code: &str) -> String {
    let text = stderr(o);
    assert!(!o.status.success(), "it succeeded: {text}");
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    let line = text.trim_end().to_string();
    assert!(
        line.starts_with(&format!("error[{code}]: ")),
        "expected error[{code}]: {line}"
    );
    assert!(line.contains(" — "), "no fix: {line}");
    // No SDK debug dump without -v.
    for dump in [
        "ServiceError",
        "extensions_1x",
        "ErrorMetadata",
        "Response {",
    ] {
        assert!(!line.contains(dump), "{dump} in {line}");
    }
    assert!(line.len() < 600, "{} characters: {line}", line.len());
    line
}

/// The environment of the AWS backends on `moto` with this table and bucket.
fn aws_env(moto: &Moto, table: &str, bucket: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ALGA_BACKEND", "aws".into()),
        ("ALGA_TABLE", table.into()),
        ("ALGA_BUCKET", bucket.into()),
        ("ALGA_S3_FORCE_PATH_STYLE", "true".into()),
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
    ]
}

fn set(env: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<&str>) {
    env.retain(|(k, _)| *k != key);
    if let Some(v) = value {
        env.push((key, v.to_string()));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn aws_a_missing_table_names_the_table_the_region_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::shared();
    let table = moto::unique("missing-table");
    let env = aws_env(moto, &table, "some-bucket");
    let out = alga(dir.path(), &env, &["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = one_line(&out, "aws.table_not_found");
    assert!(
        line.contains(&format!(
            "DynamoDB table \"{table}\" not found in region us-east-1 (ALGA_TABLE)"
        )),
        "{line}"
    );
    assert!(line.contains("set ALGA_TABLE"), "{line}");

    // -v adds the detail: the SDK's own report.
    let verbose = alga(dir.path(), &env, &["list", "-v"]);
    let text = stderr(&verbose);
    assert!(text.starts_with(&line), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(text.lines().count() > 1, "{text}");
}

#[test]
fn aws_a_wrong_region_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::shared();
    let settings = moto::settings(moto);
    runtime().block_on(moto::provision(&settings));
    let mut env = aws_env(moto, &settings.table, &settings.bucket);
    assert!(alga(dir.path(), &env, &["list"]).status.success());

    // The table is in us-east-1; asked in eu-west-1 it is not there.
    set(&mut env, "AWS_REGION", Some("eu-west-1"));
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.table_not_found");
    assert!(line.contains("not found in region eu-west-1"), "{line}");
    assert!(line.contains("AWS_REGION to the stack's region"), "{line}");

    // A region that is no region at all.
    set(&mut env, "AWS_REGION", Some("us-east1"));
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.wrong_region");
    assert!(
        line.contains("AWS_REGION=\"us-east1\" is not an AWS region"),
        "{line}"
    );

    // None.
    set(&mut env, "AWS_REGION", None);
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.no_region");
    assert!(line.contains("set AWS_REGION"), "{line}");
}

#[test]
fn aws_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::shared();
    let mut env = aws_env(moto, "any-table", "any-bucket");
    set(&mut env, "AWS_ACCESS_KEY_ID", None);
    set(&mut env, "AWS_SECRET_ACCESS_KEY", None);
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.no_credentials");
    assert!(line.contains("no AWS credentials found"), "{line}");
    assert!(line.contains("AWS_PROFILE"), "{line}");
}

/// A signed bundle of a WAT hello component in `dir`, and the trust bundle
/// (inline JSON) that trusts its key.
fn signed_bundle(dir: &Path) -> String {
    let ext = dir.join("ext");
    std::fs::create_dir_all(ext.join("dist")).unwrap();
    std::fs::write(ext.join("dist/main.wasm"), test_support::guests::hello()).unwrap();
    std::fs::write(
        ext.join("manifest.json"),
        r#"{"name":"com.example.errors","publisher":"Example","version":"1.0.0","runtime":"wasm-js@1",
            "capabilities":[],"api":{"endpoints":[{"method":"GET","path":"/api/hello","handler":"dist/main.wasm"}]}}"#,
    )
    .unwrap();
    let local = |args: &[&str]| {
        let out = alga(dir, &[], args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let public = local(&["keygen", "--key-id", "errors", "--out", "key.json"]);
    local(&["pack", "ext", "--out", "ext.tar.zst"]);
    local(&["sign", "ext.tar.zst", "--key", "key.json"]);
    format!(r#"{{"keys":[{}]}}"#, public.trim())
}

#[test]
fn aws_a_missing_bucket_names_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let trust = signed_bundle(dir.path());
    let moto = Moto::shared();
    let settings = moto::settings(moto);
    runtime().block_on(async {
        let clients = stores_aws::AwsClients::new(&settings).await;
        stores_aws::create_table(&clients.dynamodb, &settings.table)
            .await
            .unwrap();
    });
    let mut env = aws_env(moto, &settings.table, &settings.bucket);
    env.push(("SIGNING_TRUST_BUNDLE", trust));
    let out = alga(dir.path(), &env, &["publish", "ext.tar.zst"]);
    let line = one_line(&out, "aws.bucket_not_found");
    assert!(
        line.contains(&format!(
            "S3 bucket \"{}\" does not exist (ALGA_BUCKET)",
            settings.bucket
        )),
        "{line}"
    );
}

/// moto with IAM enforced: an unknown key is refused, a user without a policy
/// is denied. Its own server: enforcing is server-wide.
#[test]
fn aws_bad_credentials_and_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let settings = moto::settings(&moto);
    runtime().block_on(moto::provision(&settings));
    let addr = format!("127.0.0.1:{}", moto.port).parse().unwrap();
    // IAM's query API; moto takes the service from the credential scope.
    let iam = |body: &str| {
        let reply = test_support::http_client::send(
            addr,
            "POST",
            "/",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
            body.as_bytes(),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.text()
    };
    iam("Action=CreateUser&UserName=nobody&Version=2010-05-08");
    let keys = iam("Action=CreateAccessKey&UserName=nobody&Version=2010-05-08");
    let tag = |name: &str| {
        let start = keys.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        keys[start..start + keys[start..].find('<').unwrap()].to_string()
    };
    let (key_id, secret) = (tag("AccessKeyId"), tag("SecretAccessKey"));
    let enforce = test_support::http_client::send(
        addr,
        "POST",
        "/moto-api/reset-auth",
        &[("content-type", "text/plain")],
        b"0",
    );
    assert_eq!(enforce.status, 200, "{}", enforce.text());

    let mut env = aws_env(&moto, &settings.table, &settings.bucket);
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.bad_credentials");
    assert!(line.contains("AWS refused the credentials"), "{line}");
    assert!(line.contains("InvalidClientTokenId"), "{line}");

    set(&mut env, "AWS_ACCESS_KEY_ID", Some(&key_id));
    set(&mut env, "AWS_SECRET_ACCESS_KEY", Some(&secret));
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.access_denied");
    assert!(
        line.contains("user/nobody is not authorized to perform: dynamodb:Query"),
        "{line}"
    );
}

/// A DynamoDB endpoint that throttles every call, with the document DynamoDB
/// sends (`ThrottlingException`, HTTP 400).
fn throttling_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let doc = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: throttled\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                doc.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn aws_throttling_and_an_unreachable_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::shared();
    let mut env = aws_env(moto, "any-table", "any-bucket");
    set(&mut env, "AWS_ENDPOINT_URL", Some(&throttling_endpoint()));
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.throttled");
    assert!(line.contains("ThrottlingException"), "{line}");
    assert!(line.contains("retry"), "{line}");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    set(&mut env, "AWS_ENDPOINT_URL", Some(&url));
    let line = one_line(&alga(dir.path(), &env, &["list"]), "aws.unreachable");
    assert!(line.contains("AWS_ENDPOINT_URL"), "{line}");
}

#[test]
fn usage_and_local_errors_are_one_line_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = alga(dir.path(), &[], &["list", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_line(&out, "usage");
    assert!(line.contains("'--bogus'"), "{line}");
    assert!(line.contains("alga-lambda list --help"), "{line}");

    let out = alga(dir.path(), &[], &["publish", "missing.tar.zst"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_line(&out, "not_found");
    assert!(line.contains("missing.tar.zst"), "{line}");

    let out = alga(
        dir.path(),
        &[("ALGA_BACKEND", "aws".to_string())],
        &["list"],
    );
    let line = one_line(&out, "config");
    assert!(line.contains("ALGA_BUCKET must be set"), "{line}");
}
