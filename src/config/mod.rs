//! Configuration, parsed rather than validated: serde `*Spec` types as they sit in
//! KV or platform variables, converted with `TryFrom` into checked runtime types
//! that the rest of the gateway can trust.

pub(crate) mod credentials;
pub(crate) mod glob;
pub mod models;
pub(crate) mod registry;
pub(crate) mod settings;
pub(crate) mod telemetry;

pub use models::{Model, Models, Provider};
pub use registry::{Endpoint, Era, Registry, Server};
pub use settings::{Naming, Settings};
pub use telemetry::Telemetry;
