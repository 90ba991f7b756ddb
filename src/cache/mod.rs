//! Caching. Today: [`policy`], each route's intended freshness compiled from its config. The
//! tiered `Storage` for pingora-cache (memory → disk → Redis → object store), fill locks and
//! purge are planned (tiered-cache issue); until then nothing is stored and every request goes to
//! its backend.

pub mod policy;
