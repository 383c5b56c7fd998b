//! What several checks share and none owns: the session filters, the
//! per-database counters of the rate checks, histories and forecasts, the
//! wording of a visit of every database, and what they read of the catalog
//! besides their own statement.

pub mod catalog;
pub mod filter;
pub mod forecast;
pub mod growth;
pub mod stat_database;
pub mod visit;
