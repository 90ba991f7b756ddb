//! Application services: what the command line and the admin API do with a whole config.
//!
//! They sit above the domains because each needs several at once — the config's routes, the
//! router that matches a URL, the access schemes' keys and the backends that presign.

pub mod mint;
pub mod resolve;
