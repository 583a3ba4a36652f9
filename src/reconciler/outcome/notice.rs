//! What the writer tells the environment's notification sinks of each transition.

use super::Writer;
use crate::{model::IntentRef, notify::Event};

impl Writer<'_> {
    /// Tells the sinks that `intent` is now `status` (handed over, never waited for).
    pub fn tell(&self, intent: &IntentRef, status: &'static str, message: &str) {
        let env = self.ctx.config.environment(self.key).ok().map(|(_, e)| e);
        let page = env
            .and_then(|e| e.notify.page_url.clone())
            .or_else(|| self.ctx.config.notify.page_url.clone());
        let who = self
            .state
            .activity
            .current()
            .filter(|c| c.intent.same_entry(intent))
            .and_then(|c| c.requested_by.clone());
        self.ctx.notify(
            self.key,
            Event {
                project: self.key.project.clone(),
                environment: self.key.environment.clone(),
                release_id: intent.release_id.clone(),
                // Only the desired intent's (a superseded or rollback event is of another).
                description: self
                    .state
                    .desired
                    .as_ref()
                    .filter(|d| d.same_entry(intent))
                    .and(self.description.as_deref())
                    .map(crate::model::text::message),
                status,
                message: crate::model::text::message(message),
                who,
                when: self.ctx.now().to_wire(),
                links: crate::notify::Links { page },
            },
        );
    }
}
