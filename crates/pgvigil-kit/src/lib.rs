//! The plugin kit: everything a Nagios/Icinga plugin needs that knows
//! nothing of PostgreSQL. States, units, threshold ranges, perfdata, the
//! result and its renderings, the run's timeout, state kept between runs,
//! rates and forecasts over that state, the wording of counts, and the readers of
//! PostgreSQL's log files (text, not a connection).

pub mod error;
pub mod forecast;
pub mod formats;
pub mod judge;
pub mod logs;
pub mod output;
pub mod perfdata;
pub mod range;
pub mod rates;
pub mod state;
pub mod status;
pub mod threshold;
pub mod timeout;
pub mod units;
pub mod words;

pub use error::Error;
pub use output::CheckResult;
pub use perfdata::PerfData;
pub use status::Status;
pub use threshold::{Thresholds, UnitSpec};
pub use units::Unit;
