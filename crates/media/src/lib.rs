//! assetgate's media: the asset store (blobs by content hash, assets by owner, ingest, cached
//! lookups, over SQLite or PostgreSQL) and image variants (URL grammar, allowlists, the
//! decode/resize/encode pipeline, the bounded worker pool and the builder behind the
//! in-process origin). Originals are read and written through `origins::OriginalStore`.

pub mod assets;
pub mod config;
pub mod variants;
