//! What the judges' unit tests share: thresholds as a plugin's command line
//! gives them (defaults filling what is left out), and a result as the
//! runner reports it (with the check's hint when not OK).

use crate::check::{Check, Judging};
use crate::runner::NextStep;
use pgvigil_kit::{CheckResult, Thresholds};

/// `-w`/`-c` as check `C` reads them, its defaults filling a side left out.
pub fn thresholds<C: Check>(warning: Option<&str>, critical: Option<&str>) -> Thresholds {
    crate::runner::thresholds::<C>(&warning.map(str::to_string), &critical.map(str::to_string))
        .expect("valid ranges")
}

/// Check `C`'s judgement of `measured`, given these options, thresholds and
/// verbosity: the call every run makes.
pub fn judge<C: Check>(
    measured: &C::Measured,
    args: &C::Args,
    thresholds: &Thresholds,
    verbose: u8,
) -> CheckResult {
    C::judge(
        measured,
        &Judging {
            args,
            thresholds,
            verbose,
        },
    )
}

/// The result as the plugin prints it: a non-OK one ends with the check's hint.
pub fn reported<C: Check>(result: CheckResult) -> CheckResult {
    NextStep {
        check: "test",
        hint: C::HINT,
        runbook: None,
    }
    .apply(result)
}

/// Perfdata as printed, for comparing a whole line at once.
pub fn perf(result: &CheckResult) -> Vec<String> {
    result.perfdata.iter().map(|p| p.to_string()).collect()
}

/// A check's own options as its command line gives them.
pub fn options<A: clap::Args>(argv: &[&str]) -> A {
    #[derive(clap::Parser)]
    struct Cli<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    <Cli<A> as clap::Parser>::try_parse_from(std::iter::once("test").chain(argv.iter().copied()))
        .expect("valid options")
        .args
}
