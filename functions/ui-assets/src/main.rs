//! The ui-assets Lambda's bootstrap.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    fn_ui_assets::run().await
}
