//! Operator credentials kept in Secrets Manager (the runner's service token, the
//! publish token): read once when a function starts, so a rotated value takes
//! effect on the next cold start.

use super::map_sdk;
use super::settings::{AwsSettings, sdk_config};
use runtime_core::store::StoreError;

/// The `SecretString` of `secret_id` (a name or ARN), trimmed; an empty one is an
/// error, never an empty token.
pub async fn read_secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, StoreError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| map_sdk("secretsmanager:GetSecretValue", &e))?;
    out.secret_string()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StoreError::Internal(format!("secret {secret_id} has no SecretString")))
}

/// The value of `var`, else the secret named by `secret_var`, else `None`.
pub async fn token_from_env(var: &str, secret_var: &str) -> Result<Option<String>, StoreError> {
    if let Ok(v) = std::env::var(var)
        && !v.trim().is_empty()
    {
        return Ok(Some(v.trim().to_string()));
    }
    match std::env::var(secret_var) {
        Ok(id) if !id.trim().is_empty() => {
            // The same bounded retries and timeouts as the backends' clients.
            let config = sdk_config(&AwsSettings::new("", "")).await;
            let client = aws_sdk_secretsmanager::Client::new(&config);
            read_secret_string(&client, id.trim()).await.map(Some)
        }
        _ => Ok(None),
    }
}
