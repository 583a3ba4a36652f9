//! The pure domain: ids, release records, deployment intents, and the plan that turns
//! desired and observed images into changes. No AWS types, no I/O, no clock reads:
//! callers pass `now` in, so everything here is unit-testable.

pub mod approval;
pub mod dora;
pub mod ids;
pub mod image;
pub mod intent;
pub mod limits;
pub mod manifest;
pub mod plan;
pub mod principals;
pub mod record;
pub mod shown;
pub mod state;
pub mod text;
pub mod time;

pub use ids::{EnvKey, IdError, validate_id};
pub use image::ImageRef;
pub use intent::{Intent, IntentRef, new_intents};
pub use plan::{Change, Images, Plan, Refusal, gate, images_digest, plan, resolve_images};
pub use record::{Deployment, Person, Release, Status};
pub use time::Timestamp;
pub use time::{Raw, Stamp};
