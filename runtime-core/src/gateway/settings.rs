//! Gateway settings from the environment: credentials, claim names, quotas,
//! body limits, the registry cache, and where records go and how long they stay.

use std::time::Duration;

use crate::config::ConfigError;
use crate::execute::{InstallSource, QuotaLimits};
use crate::store::RegistryCacheSettings;

/// How `POST /v1/execute` callers prove they are the host app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecuteAuth {
    /// A shared token in `x-runner-service-token`, compared in constant time.
    /// `None` (nothing configured) refuses every request: the gateway fails closed.
    Token(Option<String>),
    /// API Gateway checks an IAM (SigV4) signature: the route must use AWS_IAM
    /// authorization. The function still requires the event to carry the IAM
    /// authorizer's context ([`IamPrincipal`]); a request that reached it any other
    /// way (the JWT-only direct route, a route or Function URL left without IAM
    /// authorization) is refused with 401.
    Iam,
    /// No credential: the API is reachable only from the host app's network (a
    /// PRIVATE REST API whose resource policy names the host app's VPC endpoint),
    /// and the function refuses every request the platform does not say came
    /// through one of these endpoints ([`PlatformIdentity::vpc_endpoint`]).
    Private {
        /// The host app's VPC endpoint ids (`vpce-…`), at least one.
        vpc_endpoints: Vec<String>,
    },
}

/// What the platform (API Gateway, a Function URL) vouches for about a request,
/// read from the event's request context: a client cannot set it with headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformIdentity {
    /// The IAM principal API Gateway authenticated (SigV4), if any.
    pub iam: Option<IamPrincipal>,
    /// The VPC endpoint a private REST API request came through, if any.
    pub vpc_endpoint: Option<String>,
}

/// The IAM principal API Gateway (or a Function URL with `AWS_IAM`) authenticated
/// for a request, as the event's request context names it. Only the platform can
/// put it there; a client cannot forge it with headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamPrincipal {
    /// The caller's ARN, else its caller id or access key id.
    pub arn: String,
}

/// Where an invocation's execution record goes besides its JSON log line
/// (`ALGA_EXECUTION_RECORDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionRecords {
    /// The log line is the record (CloudWatch on Lambda); nothing else is written.
    Log,
    /// Also a copy in the backends' execution log, written off the request path
    /// in batches.
    Table,
}

/// Everything the gateway needs besides the backends.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `/v1/execute` authentication.
    pub execute_auth: ExecuteAuth,
    /// Who names the install a `/v1/execute` request runs as.
    pub install_source: InstallSource,
    /// Operator credential for `POST /v1/publish` (`None` refuses every publish).
    pub publish_token: Option<String>,
    /// Authorizer claim holding the tenant id.
    pub tenant_claim: String,
    /// Authorizer claim holding the user id.
    pub user_claim: String,
    /// Default invocation quotas.
    pub quotas: QuotaLimits,
    /// Largest HTTP body accepted on any route (bytes, before base64).
    pub body_max: usize,
    /// How long an idempotent response is replayed.
    pub idempotency_ttl: Duration,
    /// How long execution records are kept.
    pub execution_ttl: Duration,
    /// Whether execution records are also kept in the execution log (default:
    /// only the log line inside Lambda, both elsewhere).
    pub execution_records: ExecutionRecords,
    /// The registry cache in front of the request path's reads.
    pub registry_cache: RegistryCacheSettings,
    /// Print CloudWatch Embedded Metric Format lines per invocation, with this
    /// namespace (`None`: off). On by default inside Lambda.
    pub emf_namespace: Option<String>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            execute_auth: ExecuteAuth::Token(None),
            install_source: InstallSource::Registry,
            publish_token: None,
            tenant_claim: "tenant_id".into(),
            user_claim: "sub".into(),
            quotas: QuotaLimits::default(),
            body_max: 5 << 20,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            execution_ttl: Duration::from_secs(7 * 24 * 3600),
            execution_records: ExecutionRecords::Table,
            registry_cache: RegistryCacheSettings::default(),
            emf_namespace: None,
        }
    }
}

impl GatewaySettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut s = GatewaySettings::default();
        let nonempty = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        s.execute_auth = match nonempty("ALGA_EXECUTE_AUTH").as_deref() {
            None | Some("token") => ExecuteAuth::Token(nonempty("RUNNER_SERVICE_TOKEN")),
            Some("iam") => ExecuteAuth::Iam,
            Some("private") => {
                let listed = nonempty("ALGA_EXECUTE_VPC_ENDPOINT_IDS").unwrap_or_default();
                let vpc_endpoints: Vec<String> = listed
                    .split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(String::from)
                    .collect();
                // Fail closed: without the endpoint the function cannot tell the host
                // app's network from anywhere else, so it refuses to start.
                if vpc_endpoints.is_empty() || vpc_endpoints.iter().any(|id| !valid_vpce(id)) {
                    return Err(ConfigError {
                        var: "ALGA_EXECUTE_VPC_ENDPOINT_IDS",
                        value: listed,
                        expected: "the host app's VPC endpoint id(s), vpce-<hex>, comma-separated \
                                   (required with ALGA_EXECUTE_AUTH=private)",
                    });
                }
                ExecuteAuth::Private { vpc_endpoints }
            }
            Some(other) => {
                return Err(ConfigError {
                    var: "ALGA_EXECUTE_AUTH",
                    value: other.into(),
                    expected: "token, iam or private",
                });
            }
        };
        s.install_source = match nonempty("ALGA_INSTALL_SOURCE").as_deref() {
            None | Some("registry") => InstallSource::Registry,
            Some("caller") => InstallSource::Caller,
            Some(other) => {
                return Err(ConfigError {
                    var: "ALGA_INSTALL_SOURCE",
                    value: other.into(),
                    expected: "registry or caller",
                });
            }
        };
        s.publish_token = nonempty("ALGA_PUBLISH_TOKEN");
        if let Some(v) = nonempty("ALGA_TENANT_CLAIM") {
            s.tenant_claim = v;
        }
        if let Some(v) = nonempty("ALGA_USER_CLAIM") {
            s.user_claim = v;
        }
        if let Some(v) = nonempty("ALGA_QUOTA_PER_MINUTE") {
            s.quotas.per_minute = number("ALGA_QUOTA_PER_MINUTE", &v)?;
        }
        if let Some(v) = nonempty("ALGA_QUOTA_PER_DAY") {
            s.quotas.per_day = number("ALGA_QUOTA_PER_DAY", &v)?;
        }
        let in_lambda = nonempty("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let emf_on = match nonempty("ALGA_EMF").as_deref() {
            None => in_lambda,
            Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => {
                return Err(ConfigError {
                    var: "ALGA_EMF",
                    value: other.into(),
                    expected: "on or off",
                });
            }
        };
        if emf_on {
            s.emf_namespace =
                Some(nonempty("ALGA_METRICS_NAMESPACE").unwrap_or_else(|| "AlgaLambda".into()));
        }
        if let Some(v) = nonempty("ALGA_REQUEST_MAX_BYTES") {
            s.body_max = number("ALGA_REQUEST_MAX_BYTES", &v)? as usize;
        }
        s.execution_records = match nonempty("ALGA_EXECUTION_RECORDS").as_deref() {
            // CloudWatch keeps the log line; a table copy per request would be a
            // write (and its cost) that nobody asked for.
            None if in_lambda => ExecutionRecords::Log,
            None => ExecutionRecords::Table,
            Some("log") => ExecutionRecords::Log,
            Some("table") => ExecutionRecords::Table,
            Some(other) => {
                return Err(ConfigError {
                    var: "ALGA_EXECUTION_RECORDS",
                    value: other.into(),
                    expected: "log or table",
                });
            }
        };
        if let Some(v) = nonempty("ALGA_REGISTRY_CACHE_TTL_MS") {
            s.registry_cache.ttl = Duration::from_millis(v.parse().map_err(|_| ConfigError {
                var: "ALGA_REGISTRY_CACHE_TTL_MS",
                value: v.clone(),
                expected: "milliseconds (0 = no registry cache)",
            })?);
        }
        if let Some(v) = nonempty("ALGA_REGISTRY_CACHE_ENTRIES") {
            s.registry_cache.entries = match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError {
                        var: "ALGA_REGISTRY_CACHE_ENTRIES",
                        value: v,
                        expected: "a whole number of answers, at least 1",
                    });
                }
            };
        }
        Ok(s)
    }
}

/// `vpce-` and 8 to 17 lowercase hex digits, as AWS writes endpoint ids.
fn valid_vpce(id: &str) -> bool {
    id.strip_prefix("vpce-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn number(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.parse().map_err(|_| ConfigError {
        var,
        value: v.into(),
        expected: "a whole number (0 = unlimited)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<GatewaySettings, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GatewaySettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn private_mode_requires_the_host_apps_vpc_endpoint() {
        for missing in [
            vec![("ALGA_EXECUTE_AUTH", "private")],
            vec![
                ("ALGA_EXECUTE_AUTH", "private"),
                ("ALGA_EXECUTE_VPC_ENDPOINT_IDS", " , "),
            ],
            vec![
                ("ALGA_EXECUTE_AUTH", "private"),
                ("ALGA_EXECUTE_VPC_ENDPOINT_IDS", "vpc-0123456789abcdef0"),
            ],
            vec![
                ("ALGA_EXECUTE_AUTH", "private"),
                ("ALGA_EXECUTE_VPC_ENDPOINT_IDS", "vpce-0123456789abcdef0,*"),
            ],
        ] {
            let e = from(&missing).unwrap_err();
            assert_eq!(e.var, "ALGA_EXECUTE_VPC_ENDPOINT_IDS", "{missing:?}");
        }
        assert_eq!(
            from(&[
                ("ALGA_EXECUTE_AUTH", "private"),
                (
                    "ALGA_EXECUTE_VPC_ENDPOINT_IDS",
                    "vpce-0123456789abcdef0, vpce-0abc12345"
                ),
            ])
            .unwrap()
            .execute_auth,
            ExecuteAuth::Private {
                vpc_endpoints: vec!["vpce-0123456789abcdef0".into(), "vpce-0abc12345".into()]
            }
        );
        assert_eq!(
            from(&[("ALGA_EXECUTE_AUTH", "open")]).unwrap_err().expected,
            "token, iam or private"
        );
    }

    #[test]
    fn the_install_source_is_the_registry_by_default_or_the_caller_and_nothing_else() {
        assert_eq!(from(&[]).unwrap().install_source, InstallSource::Registry);
        assert_eq!(
            from(&[("ALGA_INSTALL_SOURCE", "caller")])
                .unwrap()
                .install_source,
            InstallSource::Caller
        );
        assert_eq!(
            from(&[("ALGA_INSTALL_SOURCE", " registry ")])
                .unwrap()
                .install_source,
            InstallSource::Registry
        );
        let e = from(&[("ALGA_INSTALL_SOURCE", "headers")]).unwrap_err();
        assert_eq!(e.var, "ALGA_INSTALL_SOURCE");
    }

    #[test]
    fn execute_auth_is_a_token_by_default_or_iam_and_nothing_else() {
        assert_eq!(from(&[]).unwrap().execute_auth, ExecuteAuth::Token(None));
        assert_eq!(
            from(&[("RUNNER_SERVICE_TOKEN", " t0k ")])
                .unwrap()
                .execute_auth,
            ExecuteAuth::Token(Some("t0k".into()))
        );
        // IAM: API Gateway checked the SigV4 signature; no token is consulted.
        assert_eq!(
            from(&[("ALGA_EXECUTE_AUTH", "iam"), ("RUNNER_SERVICE_TOKEN", "t")])
                .unwrap()
                .execute_auth,
            ExecuteAuth::Iam
        );
        let e = from(&[("ALGA_EXECUTE_AUTH", "none")]).unwrap_err();
        assert_eq!(e.var, "ALGA_EXECUTE_AUTH");
    }

    #[test]
    fn claim_names_quotas_and_body_limit_are_configurable() {
        let s = from(&[
            ("ALGA_TENANT_CLAIM", "custom:tenant"),
            ("ALGA_USER_CLAIM", "username"),
            ("ALGA_QUOTA_PER_MINUTE", "7"),
            ("ALGA_QUOTA_PER_DAY", "0"),
            ("ALGA_REQUEST_MAX_BYTES", "1024"),
        ])
        .unwrap();
        assert_eq!(
            (s.tenant_claim.as_str(), s.user_claim.as_str()),
            ("custom:tenant", "username")
        );
        assert_eq!((s.quotas.per_minute, s.quotas.per_day), (7, 0));
        assert_eq!(s.body_max, 1024);
        assert!(from(&[("ALGA_QUOTA_PER_DAY", "lots")]).is_err());
    }

    #[test]
    fn records_go_to_the_log_alone_in_lambda_and_the_registry_cache_is_configurable() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "fn-execute");
        assert_eq!(
            from(&[]).unwrap().execution_records,
            ExecutionRecords::Table
        );
        assert_eq!(
            from(&[lambda]).unwrap().execution_records,
            ExecutionRecords::Log
        );
        assert_eq!(
            from(&[lambda, ("ALGA_EXECUTION_RECORDS", "table")])
                .unwrap()
                .execution_records,
            ExecutionRecords::Table
        );
        assert_eq!(
            from(&[("ALGA_EXECUTION_RECORDS", "both")]).unwrap_err().var,
            "ALGA_EXECUTION_RECORDS"
        );
        let defaults = from(&[]).unwrap().registry_cache;
        assert_eq!(defaults.ttl, Duration::from_secs(5));
        let s = from(&[
            ("ALGA_REGISTRY_CACHE_TTL_MS", "0"),
            ("ALGA_REGISTRY_CACHE_ENTRIES", "8"),
        ])
        .unwrap();
        assert_eq!(
            (s.registry_cache.ttl, s.registry_cache.entries),
            (Duration::ZERO, 8)
        );
        for bad in [
            ("ALGA_REGISTRY_CACHE_TTL_MS", "5s"),
            ("ALGA_REGISTRY_CACHE_ENTRIES", "0"),
        ] {
            assert_eq!(from(&[bad]).unwrap_err().var, bad.0);
        }
    }
}
