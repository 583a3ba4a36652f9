//! How a deployment is watched after it lands and what happens next: verification with
//! CloudWatch alarms and a bake time, automatic rollback, soak time and auto-promotion,
//! and where the outcome is told (notifications).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `verify = { alarms = ["name", …], bake = "10m" }`: after the apply is verified, the
/// deployment stays `in_progress` (phase `baking`) for `bake`, and fails if any of the
/// alarms is in `ALARM` meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// CloudWatch alarm names, in the environment's account (its `role_arn`).
    #[serde(default)]
    pub alarms: Vec<String>,
    /// Alarms on trial: watched like `alarms`, their state recorded in the outcome,
    /// never failing a bake or holding a soak.
    #[serde(default)]
    pub observe_alarms: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub bake: Duration,
    /// How often the alarms are read while baking or soaking.
    #[serde(default = "thirty_seconds", with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for Verify {
    fn default() -> Self {
        Self {
            alarms: Vec::new(),
            observe_alarms: Vec::new(),
            bake: Duration::ZERO,
            poll_interval: thirty_seconds(),
        }
    }
}

impl Verify {
    /// Whether a deployment here bakes at all.
    pub fn bakes(&self) -> bool {
        !self.bake.is_zero() || !self.watched().is_empty()
    }

    /// Every alarm read: the enforced ones, then those only observed.
    pub fn watched(&self) -> Vec<String> {
        self.alarms
            .iter()
            .chain(&self.observe_alarms)
            .cloned()
            .collect()
    }

    /// Whether `name` is only observed (its ALARM fails nothing).
    pub fn observes(&self, name: &str) -> bool {
        !self.alarms.iter().any(|a| a == name) && self.observe_alarms.iter().any(|a| a == name)
    }
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// What a deployment that failed after its apply started leads to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Nothing: the environment stays as the failure left it.
    #[default]
    Stay,
    /// A new deployment of the release that last succeeded here, written by relctl.
    Rollback,
}

/// Where deployments' outcomes are told: per environment (`notify = { … }`) and for all
/// (`[notify]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// An SNS topic ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<String>,
    /// An EventBridge bus name or ARN (`default` for the account's default bus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventbridge: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    /// The status page's address, for the links in a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self.sns.is_none() && self.eventbridge.is_none() && self.webhooks.is_empty()
    }
}

/// `{ url = "https://…", secret_env = "HOOK_SECRET" }`: a JSON POST, signed with
/// HMAC-SHA256 of the body (`X-Relctl-Signature: sha256=…`) when the environment
/// variable `secret_env` holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

impl Webhook {
    /// Why the URL is refused: only HTTPS, or plain HTTP to a loopback address.
    pub fn problem(&self) -> Option<String> {
        let Ok(url) = reqwest::Url::parse(&self.url) else {
            return Some(format!("{:?} is not a URL", self.url));
        };
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" if url.host().is_some() => None,
            "http" if loopback => None,
            "http" => Some(format!(
                "{:?}: a webhook must be https:// (plain http only to a loopback address)",
                self.url
            )),
            _ => Some(format!("{:?}: a webhook must be an https:// URL", self.url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_https_or_loopback() {
        let hook = |url: &str| Webhook {
            url: url.into(),
            secret_env: None,
        };
        for ok in [
            "https://hooks.example.com/relctl",
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert_eq!(hook(ok).problem(), None, "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "http://127.0.0.1.evil.example/x",
            "http://127.0.0.1@hooks.example.com/x",
            "ftp://example.com",
            "hooks.example.com",
            "https://",
        ] {
            assert!(hook(bad).problem().is_some(), "{bad}");
        }
    }
}
