//! The ui-assets Lambda: serves extension UI files under
//! `/ext-ui/{extensionId}/{contentHash}/{path}` as a CloudFront origin (Function
//! URL or API Gateway). All rules live in [`runtime_core::ui`]; `alga-lambda up`
//! serves the same [`UiAssetsFunction::handle`].

use std::sync::Arc;

use lambda_http::{Body, Request, Response, service_fn};
use runtime_core::backends::Backends;
use runtime_core::gateway::HttpReply;
use runtime_core::ui::{UiRequest, UiServer, UiSettings};

/// The function's state, built once per process.
pub struct UiAssetsFunction {
    server: UiServer,
}

impl UiAssetsFunction {
    /// Builds the function from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = fn_common::Environment::load().await?;
        let backends = fn_common::backends_in(&env).await?;
        Ok(Self::new(
            &backends,
            UiSettings::from_lookup(|k| env.get(k))?,
        ))
    }

    /// Builds the function over given backends. Which installs a bundle is checked
    /// against follows `settings.install_source`: our registry's, or with `caller`
    /// the host app's (`stores_host_api::ui_install_check`).
    pub fn new(backends: &Backends, settings: UiSettings) -> Self {
        let check = stores_host_api::ui_install_check(&settings, backends.registry.clone());
        UiAssetsFunction {
            server: UiServer::with_check(backends.blobs.clone(), check, settings),
        }
    }

    /// Serves one HTTP event.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        // The query travels with the path: `tenant=` narrows the registry check.
        let path = match req.uri().query() {
            Some(q) => format!("{}?{q}", fn_common::path(&req)),
            None => fn_common::path(&req),
        };
        let if_none_match = req
            .headers()
            .get("if-none-match")
            .and_then(|v| v.to_str().ok());
        let reply = self
            .server
            .serve(&UiRequest {
                method: req.method().as_str(),
                raw_path: &path,
                if_none_match,
            })
            .await;
        if let Some(code) = reply.code {
            tracing::info!(target: "alga::ui", path = fn_common::path(&req), status = reply.status, code, "ui request refused");
        }
        fn_common::into_response(HttpReply {
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
        })
    }
}

/// Runs the Lambda runtime loop.
pub async fn run() -> Result<(), lambda_http::Error> {
    fn_common::init_tracing();
    let function = Arc::new(UiAssetsFunction::from_env().await?);
    lambda_http::run(service_fn(move |req: Request| {
        let function = function.clone();
        async move { Ok::<_, std::convert::Infallible>(function.handle(req).await) }
    }))
    .await
}
