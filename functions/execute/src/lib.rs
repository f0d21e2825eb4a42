//! The execute Lambda: `POST /v1/execute` and `ANY /api/ext/{extensionId}/{proxy+}`
//! behind API Gateway (HTTP API v2, REST API v1) or a Function URL. It only
//! translates events into [`Gateway`] calls; `alga-lambda up` serves the same
//! [`ExecuteFunction::handle`].

use std::path::PathBuf;
use std::sync::Arc;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use runtime_core::RuntimeConfig;
use runtime_core::backends::Backends;
use runtime_core::gateway::{
    Caller, DirectRequest, ExecuteAuth, Gateway, GatewaySettings, HttpReply,
};
use runtime_core::store::aws::token_from_env;
use tracing::Instrument;

/// The function's state, built once per process (during Lambda INIT).
pub struct ExecuteFunction {
    gateway: Arc<Gateway>,
}

impl ExecuteFunction {
    /// Builds the engine, linker, pools and backend clients from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        let data = PathBuf::from(std::env::var("ALGA_DATA").unwrap_or_else(|_| ".alga".into()));
        let backends = Backends::from_env(&data).await?;
        let mut settings = GatewaySettings::from_env()?;
        if settings.execute_auth == ExecuteAuth::Token(None) {
            let token =
                token_from_env("RUNNER_SERVICE_TOKEN", "RUNNER_SERVICE_TOKEN_SECRET_ID").await?;
            settings.execute_auth = ExecuteAuth::Token(token);
        }
        if settings.execute_auth == ExecuteAuth::Token(None) {
            tracing::warn!("no service token configured: every /v1/execute request is refused");
        }
        Self::new(backends, &RuntimeConfig::from_env()?, settings)
    }

    /// Builds the function over given backends and settings.
    pub fn new(
        backends: Backends,
        config: &RuntimeConfig,
        settings: GatewaySettings,
    ) -> anyhow::Result<Self> {
        Ok(ExecuteFunction {
            gateway: Arc::new(Gateway::build(backends, config, settings)?),
        })
    }

    /// The gateway behind the function (shared with `up`'s event dispatcher).
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serves one HTTP event. Its log lines carry the X-Ray trace id (lambda_http
    /// copies it from the invocation into `x-amzn-trace-id`).
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let trace = req
            .headers()
            .get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let span = tracing::info_span!("request", xray_trace_id = %trace);
        fn_common::into_response(self.reply(&req).instrument(span).await)
    }

    async fn reply(&self, req: &Request) -> HttpReply {
        let path = fn_common::path(req);
        if path == "/v1/execute" || path.ends_with("/v1/execute") {
            if req.method() != lambda_http::http::Method::POST {
                return HttpReply::error(405, "method_not_allowed", "use POST")
                    .with_header("allow", "POST");
            }
            return self
                .gateway
                .execute_api(req.headers(), fn_common::body_bytes(req))
                .await;
        }
        let Some((extension, rest)) = direct_route(req, &path) else {
            return HttpReply::error(404, "route_not_found", format!("no route for {path}"));
        };
        let settings = self.gateway.settings();
        let claims = fn_common::claims(req);
        self.gateway
            .direct(DirectRequest {
                caller: Caller::from_claims(&claims, &settings.tenant_claim, &settings.user_claim),
                extension_id: &extension,
                method: req.method().as_str(),
                path: &rest,
                query: fn_common::query(req),
                headers: req.headers(),
                body: fn_common::body_bytes(req),
                request_id: fn_common::request_id(req),
            })
            .await
    }
}

/// `(extensionId, "/" + proxy)` of a direct-route request: from API Gateway's path
/// parameters when the route set them, else from the path itself.
fn direct_route(req: &Request, path: &str) -> Option<(String, String)> {
    let params = req.path_parameters();
    if let (Some(ext), Some(rest)) = (params.first("extensionId"), params.first("proxy")) {
        return Some((
            ext.to_string(),
            format!("/{}", rest.trim_start_matches('/')),
        ));
    }
    let after = &path[path.find("/api/ext/")? + "/api/ext/".len()..];
    let (ext, rest) = after.split_once('/').unwrap_or((after, ""));
    (!ext.is_empty()).then(|| (ext.to_string(), format!("/{rest}")))
}

/// Runs the Lambda runtime loop.
pub async fn run() -> Result<(), lambda_http::Error> {
    fn_common::init_tracing();
    let function = Arc::new(ExecuteFunction::from_env().await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "init failed");
        e
    })?);
    lambda_http::run(service_fn(move |req: Request| {
        let function = function.clone();
        async move { Ok::<_, std::convert::Infallible>(function.handle(req).await) }
    }))
    .await
}
