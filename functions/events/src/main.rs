//! The events Lambda's bootstrap.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    fn_events::run().await
}
