//! Edge essentials an nginx user relies on (issue 9): PROXY protocol, the real client address behind trusted hops,
//! an access log written off the request path, path-prefix rewrites and request ids.
//!
//! Each module is pure and self-contained, taking plain parameters rather than config types.

pub(crate) mod access_log;
pub(crate) mod client_addr;
pub(crate) mod pending;
pub(crate) mod proxy_protocol;
pub(crate) mod request_id;
pub(crate) mod rewrite;
pub(crate) mod rules;
