//! The publish Lambda's bootstrap.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fn_publish::run().await
}
