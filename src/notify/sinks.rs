//! The sinks a notification goes to, each built once with the clients of its account.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Event;
use crate::config::promotion::Notify;

/// How long one webhook POST may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Sink {
    Sns {
        client: aws_sdk_sns::Client,
        topic: String,
    },
    EventBridge {
        client: aws_sdk_eventbridge::Client,
        bus: String,
    },
    Webhook {
        client: reqwest::Client,
        url: String,
        /// The HMAC-SHA256 key, read from the configured environment variable.
        secret: Option<Vec<u8>>,
    },
}

/// The EventBridge detail-type of relctl's events.
pub const DETAIL_TYPE: &str = "relctl Deployment State Change";
/// The header carrying a webhook body's signature: `sha256=` and the hex HMAC.
pub const SIGNATURE_HEADER: &str = "X-Relctl-Signature";

impl Sink {
    /// The sinks `notify` names, with the clients of its account.
    pub fn from_config(
        notify: &Notify,
        sns: impl FnOnce() -> aws_sdk_sns::Client,
        eventbridge: impl FnOnce() -> aws_sdk_eventbridge::Client,
        http: &reqwest::Client,
    ) -> Vec<Self> {
        let mut sinks = Vec::new();
        if let Some(topic) = &notify.sns {
            sinks.push(Self::Sns {
                client: sns(),
                topic: topic.clone(),
            });
        }
        if let Some(bus) = &notify.eventbridge {
            sinks.push(Self::EventBridge {
                client: eventbridge(),
                bus: bus.clone(),
            });
        }
        for hook in &notify.webhooks {
            sinks.push(Self::Webhook {
                client: http.clone(),
                url: hook.url.clone(),
                secret: hook.secret_env.as_ref().and_then(|name| {
                    let secret = std::env::var(name).ok().filter(|s| !s.is_empty());
                    if secret.is_none() {
                        tracing::warn!(
                            variable = name,
                            "a webhook's secret_env is not set: its notifications go unsigned"
                        );
                    }
                    secret.map(String::into_bytes)
                }),
            });
        }
        sinks
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sns { .. } => "sns",
            Self::EventBridge { .. } => "eventbridge",
            Self::Webhook { .. } => "webhook",
        }
    }

    pub(super) async fn deliver(&self, event: &Event) -> Result<(), String> {
        let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
        match self {
            Self::Sns { client, topic } => {
                let subject: String = format!(
                    "relctl: {} {} in {}/{}",
                    event.release_id, event.status, event.project, event.environment
                )
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
                client
                    .publish()
                    .topic_arn(topic)
                    .subject(subject)
                    .message(body)
                    .send()
                    .await
                    .map_err(|e| crate::aws::AwsError::from_sdk(e).to_string())?;
                Ok(())
            }
            Self::EventBridge { client, bus } => {
                let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("relctl")
                    .detail_type(DETAIL_TYPE)
                    .detail(body)
                    .event_bus_name(bus)
                    .build();
                let output = client
                    .put_events()
                    .entries(entry)
                    .send()
                    .await
                    .map_err(|e| crate::aws::AwsError::from_sdk(e).to_string())?;
                match output.failed_entry_count() {
                    0 => Ok(()),
                    _ => Err(output
                        .entries()
                        .iter()
                        .find_map(|e| e.error_message())
                        .unwrap_or("PutEvents refused the event")
                        .to_owned()),
                }
            }
            Self::Webhook {
                client,
                url,
                secret,
            } => {
                let mut request = client
                    .post(url)
                    .timeout(WEBHOOK_TIMEOUT)
                    .header("Content-Type", "application/json");
                if let Some(secret) = secret {
                    request = request.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
                }
                // Never the URL in an error (a chat webhook's token is in its path).
                let host = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                let response = request
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("{host}: {}", e.without_url()))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("{host} answered {status}"))
                }
            }
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
