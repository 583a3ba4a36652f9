//! The alarms of an environment's `verify`, read with DescribeAlarms (metric and
//! composite alarms, up to 100 names a call) in the environment's account.

use crate::{actuator::ActuatorError, model::Timestamp};

/// Names per DescribeAlarms call (its `AlarmNames` limit).
const PER_CALL: usize = 100;

#[derive(Debug, Clone)]
pub struct Alarms {
    pub client: aws_sdk_cloudwatch::Client,
}

/// One alarm as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSeen {
    pub name: String,
    pub state: AlarmState,
    pub reason: String,
    /// When it last changed state.
    pub since: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
    /// No alarm has this name (in this account and region).
    Missing,
}

impl AlarmSeen {
    /// Holds a deployment back: in `ALARM`, or not there to be watched.
    pub fn is_bad(&self) -> bool {
        matches!(self.state, AlarmState::Alarm | AlarmState::Missing)
    }

    /// In words, for a status message.
    pub fn describe(&self) -> String {
        match self.state {
            AlarmState::Missing => format!(
                "alarm {:?} does not exist in CloudWatch (in the environment's account and region)",
                self.name
            ),
            _ => format!(
                "alarm {:?} is in {}{}: {}",
                self.name,
                match self.state {
                    AlarmState::Alarm => "ALARM",
                    AlarmState::Ok => "OK",
                    _ => "INSUFFICIENT_DATA",
                },
                self.since
                    .map(|t| format!(" since {}", t.to_wire()))
                    .unwrap_or_default(),
                crate::model::text::message(&self.reason)
            ),
        }
    }
}

impl Alarms {
    /// The alarms named, in the order named.
    pub async fn read(&self, names: &[String]) -> Result<Vec<AlarmSeen>, ActuatorError> {
        let mut found = std::collections::HashMap::new();
        for chunk in names.chunks(PER_CALL) {
            let mut next: Option<String> = None;
            loop {
                let output = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                    .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(|e| ActuatorError::aws("DescribeAlarms", e))?;
                let metric = output.metric_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value(),
                        a.state_reason(),
                        a.state_updated_timestamp(),
                    )
                });
                let composite = output.composite_alarms().iter().map(|a| {
                    (
                        a.alarm_name(),
                        a.state_value(),
                        a.state_reason(),
                        a.state_updated_timestamp(),
                    )
                });
                for (name, state, reason, since) in metric.chain(composite) {
                    let Some(name) = name else { continue };
                    use aws_sdk_cloudwatch::types::StateValue;
                    let state = match state {
                        Some(StateValue::Alarm) => AlarmState::Alarm,
                        Some(StateValue::Ok) => AlarmState::Ok,
                        _ => AlarmState::InsufficientData,
                    };
                    let since = since.and_then(|t| {
                        chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                            .map(Timestamp::from_utc)
                    });
                    found.insert(
                        name.to_owned(),
                        AlarmSeen {
                            name: name.to_owned(),
                            state,
                            reason: reason.unwrap_or_default().to_owned(),
                            since,
                        },
                    );
                }
                match output.next_token() {
                    Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(names
            .iter()
            .map(|name| {
                found.remove(name).unwrap_or_else(|| AlarmSeen {
                    name: name.clone(),
                    state: AlarmState::Missing,
                    reason: String::new(),
                    since: None,
                })
            })
            .collect())
    }
}
