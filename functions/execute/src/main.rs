//! The execute Lambda's bootstrap.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fn_execute::run().await
}
