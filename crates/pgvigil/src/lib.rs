//! pgvigil: the PostgreSQL side of a suite of Nagios/Icinga plugins. The
//! connection, the session, the checks and their registry; everything that
//! knows no PostgreSQL (ranges, perfdata, output, state) is the kit,
//! `pgvigil_kit`, referred to by that name.

pub mod check;
pub mod checks;
pub mod conninfo;
pub mod filesystem;
pub mod handlers;
pub mod registry;
pub mod rest;
pub mod runner;
pub mod session;
pub mod setup_check;
mod tls;
