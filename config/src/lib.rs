//! sluice's configuration: the TOML file types, the validated model, how one becomes the other, and the one write
//! path through which reloads, the admin API and the controller change live state.
//!
//! No networking here: every other crate depends on this one.

mod address;
mod document;
mod duration;
mod edge;
mod error;
mod file;
mod key_path;
mod live;
mod model;
mod resilience;
mod rollout;
mod share;
mod sticky;
mod transport;
mod validate;
mod watch;

pub use edge::{AccessLog, Cidr, HeaderRules, LogFormat, RequestId, Template, TemplatePart};
pub use error::{ConfigError, Location};
pub use live::{
    DrainedServer, Event, LiveState, OpenError, OpenOptions, Overrides, ReloadOutcome, RuntimeWeights, Snapshot,
    StateFileError, Store, WeightSource, WriteError, default_state_path, unix_millis,
};
pub use model::{
    Admin, Config, HostPattern, Listen, Route, Runtime, ServerAddr, Timeouts, Tls, TlsCertificate, Upstream, Weight,
};
pub use resilience::{HealthCheck, Limits, OutlierDetection, RetryPolicy};
pub use rollout::{AnalysisSettings, Phase, Rollout, RolloutState, Strategy, Webhook, WebhookKind};
pub use share::{SLOTS, percent, shares};
pub use sticky::{MatchRule, MatchValue, PIN_KEY_MIN_LEN, PinKeyFiles, SessionKey, Sticky, StickyMode};
pub use transport::{UpstreamProtocol, UpstreamTls};
pub use watch::{FileWatcher, WatchError, watch_file, watch_files};
