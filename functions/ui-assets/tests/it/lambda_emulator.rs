//! The ui-assets Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the CloudFront-origin sample event (a Function URL request
//! with OAC) for the example extension published and installed for `acme`.

use test_support::lambda_emulator as emulator;

use emulator::{Deployment, Emulator, body_bytes, event, header};

#[test]
fn fn_ui_assets_answers_the_sample_event_under_cargo_lambdas_emulator() {
    let deployment = Deployment::new();
    let hex = deployment.publish_example("acme");
    let mut lambda = Emulator::start();
    lambda.attach(
        "fn-ui-assets",
        env!("CARGO_BIN_EXE_fn-ui-assets"),
        deployment.function_env(),
    );

    // The sample carries an If-None-Match that does not match: 200 with the file.
    let sample = event("ui-cloudfront.json", &hex);
    let r = lambda.invoke("fn-ui-assets", &sample);
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(header(&r, "content-type"), Some("text/html"), "{r}");
    assert_eq!(
        header(&r, "cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{r}"
    );
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"), "{r}");
    let csp = header(&r, "content-security-policy").expect("a CSP on HTML");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let etag = header(&r, "etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with("\"sha256-") && etag.ends_with('"') && etag.len() == 73,
        "{etag}"
    );
    let html = String::from_utf8(body_bytes(&r)).unwrap();
    assert!(html.contains("<title>Hello extension</title>"), "{html}");
    assert_eq!(
        header(&r, "content-length").map(str::to_string),
        Some(body_bytes(&r).len().to_string()),
        "{r}"
    );

    // The same request revalidated with the ETag: 304, no body, same validators.
    let mut revalidate = sample.clone();
    revalidate["headers"]["if-none-match"] = etag.clone().into();
    let r = lambda.invoke("fn-ui-assets", &revalidate);
    assert_eq!(r["statusCode"], 304, "{r}");
    assert_eq!(header(&r, "etag"), Some(etag.as_str()), "{r}");
    assert!(header(&r, "content-security-policy").is_some(), "{r}");
    assert!(body_bytes(&r).is_empty(), "{r}");

    // Another asset of the same bundle: its own content type, and the CSP too
    // (every UI file carries it).
    let mut css = sample.clone();
    let css_path = format!("/ext-ui/com.example.hello/sha256%3A{hex}/style.css");
    css["rawPath"] = css_path.clone().into();
    css["requestContext"]["http"]["path"] = css_path.into();
    css["headers"]
        .as_object_mut()
        .unwrap()
        .remove("if-none-match");
    let r = lambda.invoke("fn-ui-assets", &css);
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(header(&r, "content-type"), Some("text/css"), "{r}");
    assert_eq!(header(&r, "content-security-policy"), Some(csp), "{r}");

    // A binary asset: base64 in the Lambda response, the file's exact bytes.
    let mut png = css.clone();
    let png_path = format!("/ext-ui/com.example.hello/sha256%3A{hex}/icon.png");
    png["rawPath"] = png_path.clone().into();
    png["requestContext"]["http"]["path"] = png_path.into();
    let r = lambda.invoke("fn-ui-assets", &png);
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(header(&r, "content-type"), Some("image/png"), "{r}");
    assert_eq!(r["isBase64Encoded"], true, "{r}");
    let icon = std::fs::read(emulator::repo().join("examples/hello/ui/icon.png")).unwrap();
    assert_eq!(body_bytes(&r), icon, "{r}");
    assert_eq!(
        header(&r, "content-length"),
        Some(icon.len().to_string().as_str()),
        "{r}"
    );
    assert_eq!(header(&r, "content-security-policy"), Some(csp), "{r}");

    // A traversal attempt: 400.
    let mut traversal = sample.clone();
    let bad = format!("/ext-ui/com.example.hello/sha256%3A{hex}/%2E%2E/secret.json");
    traversal["rawPath"] = bad.clone().into();
    traversal["requestContext"]["http"]["path"] = bad.into();
    let r = lambda.invoke("fn-ui-assets", &traversal);
    assert_eq!(r["statusCode"], 400, "{r}");

    // A hash no install of the extension has: refused (never served).
    let mut foreign = sample.clone();
    let other = format!(
        "/ext-ui/com.example.hello/sha256%3A{}/index.html",
        "1".repeat(64)
    );
    foreign["rawPath"] = other.clone().into();
    foreign["requestContext"]["http"]["path"] = other.into();
    let r = lambda.invoke("fn-ui-assets", &foreign);
    assert_eq!(r["statusCode"], 404, "{r}");

    // The sample's own bundle asked for by another tenant (`tenant=` in the query, as the
    // host page's iframe src carries it): not globex's install, so the same 404.
    let mut other_tenant = sample.clone();
    other_tenant["rawQueryString"] = "path=%2F&tenant=globex&extensionId=com.example.hello".into();
    other_tenant["queryStringParameters"]["tenant"] = "globex".into();
    let r = lambda.invoke("fn-ui-assets", &other_tenant);
    assert_eq!(r["statusCode"], 404, "{r}");
}
