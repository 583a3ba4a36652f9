//! `relctl setup`: create what is missing, say what was done, change nothing else.

use aws_config::SdkConfig;

use super::Failure;
use crate::{config::Config, store::setup};

pub async fn run(config: &Config, sdk: &SdkConfig) -> Result<(), Failure> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    for table in config.releases_tables() {
        println!("{}", setup::ensure_releases_table(&client, &table).await?);
    }
    println!(
        "{}",
        setup::ensure_state_table(&client, &config.tables.state).await?
    );
    Ok(())
}
