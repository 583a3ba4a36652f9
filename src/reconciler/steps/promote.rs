//! Auto-promotion: a release that succeeded here and soaked is requested, by relctl, in
//! each environment naming this one in `auto_promote_from` — an ordinary deployment
//! entry, which then meets that environment's gate, approvals and freezes like any.
//! Never a release already asked for there, nor one older than what is desired there.

use std::time::Duration;

use tracing::{info, warn};

use super::Steps;
use crate::{
    model::{EnvKey, IntentRef, record::Deployment, state::Promotion},
    reconciler::Error,
};

impl Steps<'_> {
    /// The environments promoted to from this one, with their soak times.
    pub(super) fn promotes_to(&self) -> Vec<(String, Duration)> {
        self.project
            .environments
            .iter()
            .filter(|e| e.auto_promote_from.as_deref() == Some(self.env.id.as_str()))
            .map(|e| (e.id.clone(), e.soak))
            .collect()
    }

    pub(super) async fn promote(
        &mut self,
        intent: &IntentRef,
        targets: &[String],
    ) -> Result<(), Error> {
        let Some((release, _, _)) = self.found.as_ref().and_then(|f| f.as_ref()).cloned() else {
            return Ok(());
        };
        let table = self.ctx.config.releases_table(self.project);
        for target in targets {
            let Some(env) = self.project.environments.iter().find(|e| &e.id == target) else {
                continue;
            };
            if release
                .deployments
                .iter()
                .any(|d| &d.environment.id == target)
            {
                info!(to = target, "already requested there; not promoted again");
            } else if let Some(why) = self.not_there(&release, target).await? {
                info!(to = target, why, "not promoted");
            } else {
                let soak = humantime::format_duration(env.soak);
                let entry = Deployment::by_relctl(
                    self.ctx.now(),
                    &env.id,
                    &env.name,
                    "auto-promotion",
                    format!(
                        "automatic promotion from {} after {soak} there",
                        self.env.id
                    ),
                );
                match self
                    .ctx
                    .releases
                    .append_deployment(table, &release.release_id, &entry)
                    .await
                {
                    Ok(_) => info!(to = target, "promoted"),
                    Err(e) if e.class() == crate::aws::ErrorClass::Permanent => {
                        warn!(to = target, error = %e, "the promotion could not be recorded");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let promotion = self
                .writer
                .state
                .promotion
                .get_or_insert_with(|| Promotion {
                    release_id: intent.release_id.clone(),
                    date_created: intent.date_created,
                    done: Vec::new(),
                });
            if promotion.release_id != intent.release_id
                || promotion.date_created != intent.date_created
            {
                *promotion = Promotion {
                    release_id: intent.release_id.clone(),
                    date_created: intent.date_created,
                    done: Vec::new(),
                };
            }
            promotion.done.push(target.clone());
            // Saved per target: a crash re-requests none already written.
            self.writer.save().await?;
        }
        Ok(())
    }

    /// Why `release` must not be promoted to `target`, as `target`'s state says (one
    /// read): it was rolled back there, or a newer release (by `date_created`) is
    /// desired there, which a promotion must not move back.
    async fn not_there(
        &self,
        release: &crate::model::Release,
        target: &str,
    ) -> Result<Option<String>, Error> {
        let key = EnvKey::new(&self.project.id, target);
        let state = self.ctx.state.get(&key).await?;
        if let Some(mark) = state.rolled_back(&release.release_id) {
            return Ok(Some(format!("it was rolled back there ({})", mark.reason)));
        }
        let Some(desired) = state.desired.filter(|d| d.release_id != release.release_id) else {
            return Ok(None);
        };
        let table = self.ctx.config.releases_table(self.project);
        let there = self.ctx.releases.get(table, &desired.release_id).await?;
        let newer = match (there.and_then(|r| r.date_created), release.date_created) {
            (Some(there), Some(here)) => there > here,
            // Which is newer cannot be told: do not risk moving it back.
            _ => true,
        };
        Ok(newer.then(|| format!("a newer release is desired there ({})", desired.release_id)))
    }
}
