//! The execute Lambda: `POST /v1/execute` and `ANY /api/ext/{extensionId}/{proxy+}`
//! behind API Gateway (HTTP API v2, REST API v1) or a Function URL. It only
//! translates events into [`Gateway`] calls; `alga-lambda up` serves the same
//! [`ExecuteFunction::handle`].

use std::sync::Arc;

use fn_common::token_from_env;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use runtime_core::RuntimeConfig;
use runtime_core::backends::Backends;
use runtime_core::gateway::{
    Caller, DirectRequest, ExecuteAuth, Gateway, GatewaySettings, HttpReply,
};
use tracing::Instrument;

/// The function's state, built once per process (during Lambda INIT).
pub struct ExecuteFunction {
    gateway: Arc<Gateway>,
}

impl ExecuteFunction {
    /// Builds the engine, linker, pools and backend clients from the environment.
    pub async fn from_env() -> anyhow::Result<Self> {
        // Settings first: a misconfigured function (e.g. `private` mode without the
        // host app's VPC endpoint) refuses to start before it touches anything.
        let env = fn_common::Environment::load().await?;
        let mut settings = GatewaySettings::from_lookup(|k| env.get(k))?;
        let backends = fn_common::backends_in(&env).await?;
        if settings.execute_auth == ExecuteAuth::Token(None) {
            let token =
                token_from_env("RUNNER_SERVICE_TOKEN", "RUNNER_SERVICE_TOKEN_SECRET_ID").await?;
            settings.execute_auth = ExecuteAuth::Token(token);
        }
        if settings.execute_auth == ExecuteAuth::Token(None) {
            tracing::warn!("no service token configured: every /v1/execute request is refused");
        }
        Self::new(
            backends,
            &RuntimeConfig::from_lookup(|k| env.get(k))?,
            settings,
        )
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
        match route(req, &path) {
            Route::Execute => {
                if req.method() != lambda_http::http::Method::POST {
                    return HttpReply::error(405, "method_not_allowed", "use POST")
                        .with_header("allow", "POST");
                }
                let platform = fn_common::platform_identity(req);
                self.gateway
                    .execute_api_as(&platform, req.headers(), fn_common::body_bytes(req))
                    .await
            }
            Route::Direct { extension, rest } => {
                let settings = self.gateway.settings();
                let caller = fn_common::claims(req)
                    .map_err(|conflict| conflict.to_string())
                    .and_then(|claims| {
                        Caller::from_claims(&claims, &settings.tenant_claim, &settings.user_claim)
                            .ok_or_else(|| {
                                format!(
                                    "the authorizer supplied no {:?} claim",
                                    settings.tenant_claim
                                )
                            })
                    });
                self.gateway
                    .direct(DirectRequest {
                        caller,
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
            Route::None => HttpReply::error(404, "route_not_found", format!("no route for {path}")),
        }
    }
}

/// The execute API's route.
const EXECUTE_ROUTE: &str = "/v1/execute";
/// The direct route's template, as API Gateway names it.
const DIRECT_ROUTE: &str = "/api/ext/{extensionId}/{proxy+}";
/// The direct route's path prefix.
const DIRECT_PREFIX: &str = "/api/ext/";

/// Which handler serves a request.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `POST /v1/execute`.
    Execute,
    /// `/api/ext/{extension}{rest}`.
    Direct { extension: String, rest: String },
    /// Neither.
    None,
}

/// Routes on the exact route, never on a suffix: the route template API Gateway
/// matched when it names one (it cannot be set by the client), else the exact
/// path (the `$default` route, Function URLs, `up`). A path such as
/// `/api/ext/x/v1/execute` is the direct route of extension `x` with path
/// `/v1/execute`: the JWT-only route must never reach the execute API, whose
/// callers name any tenant.
fn route(req: &Request, path: &str) -> Route {
    match fn_common::route_template(req) {
        Some(t) if t == EXECUTE_ROUTE => Route::Execute,
        Some(t) if t == DIRECT_ROUTE => {
            let params = req.path_parameters();
            match (params.first("extensionId"), params.first("proxy")) {
                (Some(ext), Some(rest)) if !ext.is_empty() => Route::Direct {
                    extension: ext.to_string(),
                    rest: format!("/{}", rest.trim_start_matches('/')),
                },
                _ => Route::None,
            }
        }
        Some(_) => Route::None,
        None => route_by_path(path, fn_common::stage(req).as_deref()),
    }
}

/// [`route`] for the `$default` route: the path, less a named stage's prefix.
fn route_by_path(path: &str, stage: Option<&str>) -> Route {
    let path = stage
        .and_then(|s| path.strip_prefix('/')?.strip_prefix(s))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    if path == EXECUTE_ROUTE {
        return Route::Execute;
    }
    let Some(after) = path.strip_prefix(DIRECT_PREFIX) else {
        return Route::None;
    };
    let (ext, rest) = after.split_once('/').unwrap_or((after, ""));
    if ext.is_empty() {
        return Route::None;
    }
    Route::Direct {
        extension: ext.to_string(),
        rest: format!("/{rest}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(ext: &str, rest: &str) -> Route {
        Route::Direct {
            extension: ext.into(),
            rest: rest.into(),
        }
    }

    #[test]
    fn the_default_route_matches_exact_paths_only() {
        assert_eq!(route_by_path("/v1/execute", None), Route::Execute);
        assert_eq!(
            route_by_path("/prod/v1/execute", Some("prod")),
            Route::Execute
        );
        assert_eq!(
            route_by_path("/api/ext/x/v1/execute", None),
            direct("x", "/v1/execute")
        );
        assert_eq!(
            route_by_path("/prod/api/ext/x/v1/execute", Some("prod")),
            direct("x", "/v1/execute")
        );
        for other in [
            "/v1/execute/",
            "/x/v1/execute",
            "/prod/v1/execute",
            "/v1/executex",
            "/api/ext/",
            "/api/ext//v1/execute",
            "/xapi/ext/x/y",
        ] {
            assert_eq!(route_by_path(other, None), Route::None, "{other}");
        }
        assert_eq!(route_by_path("/api/ext/x", None), direct("x", "/"));
    }
}
