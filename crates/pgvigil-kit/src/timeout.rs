//! `-t SECONDS[:STATE]`: a watchdog that bounds the whole run, connect included.
//!
//! The watchdog and the normal path race to print; whichever claims the
//! output first prints and exits, so a late result never follows a timeout.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::status::Status;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeout {
    pub seconds: u32,
    pub state: Status,
}

impl Timeout {
    pub fn parse(text: &str) -> Result<Timeout, Error> {
        let bad = |why: &str| Error::Usage(format!("invalid -t/--timeout '{text}': {why}"));
        let (secs, state) = match text.split_once(':') {
            Some((secs, state)) => (
                secs,
                Status::parse(state)
                    .ok_or_else(|| bad("state must be ok, warning, critical or unknown"))?,
            ),
            None => (text, Status::Unknown),
        };
        let seconds: u32 = secs
            .trim()
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("seconds must be a whole number above 0"))?;
        Ok(Timeout { seconds, state })
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds))
    }
}

/// What the run is waiting on, for the timeout message.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Connecting = 1,
    Querying = 2,
}

static PHASE: AtomicU8 = AtomicU8::new(Phase::Starting as u8);
static CLAIMED: AtomicBool = AtomicBool::new(false);

pub fn set_phase(phase: Phase) {
    PHASE.store(phase as u8, Ordering::SeqCst);
}

fn phase_text() -> &'static str {
    match PHASE.load(Ordering::SeqCst) {
        1 => "while connecting",
        2 => "while running query",
        _ => "while starting",
    }
}

/// Takes the right to print the result; false when the watchdog already has.
pub fn claim_output() -> bool {
    !CLAIMED.swap(true, Ordering::SeqCst)
}

/// The armed timeout and how to print its result.
type Render = Box<dyn Fn(&str) -> String + Send>;
static ARMED: std::sync::OnceLock<(Timeout, std::sync::Mutex<Render>)> = std::sync::OnceLock::new();

/// Starts the watchdog thread. On expiry `render` turns the reason into the
/// plugin's output, in its format, and the process exits with the state `-t` names.
pub fn arm(timeout: Timeout, render: Render) {
    if ARMED.set((timeout, std::sync::Mutex::new(render))).is_err() {
        return;
    }
    std::thread::spawn(move || {
        std::thread::sleep(timeout.duration());
        expire();
    });
}

/// Ends the run as the watchdog does, now: the server stopped the statement
/// at its statement_timeout, which is the same budget and may fire a moment
/// before the watchdog thread (a loaded machine wakes it late). Returns only
/// when no timeout is armed or the watchdog is already printing.
pub fn expire() {
    let Some((timeout, render)) = ARMED.get() else {
        return;
    };
    if claim_output() {
        let why = format!("timed out after {} s ({})", timeout.seconds, phase_text());
        let text = render
            .lock()
            .map(|r| r(&why))
            .unwrap_or_else(|e| (e.into_inner())(&why));
        print!("{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::exit(timeout.state.exit_code());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_optional_state() {
        assert_eq!(
            Timeout::parse("10"),
            Ok(Timeout {
                seconds: 10,
                state: Status::Unknown
            })
        );
        assert_eq!(
            Timeout::parse("20:critical"),
            Ok(Timeout {
                seconds: 20,
                state: Status::Critical
            })
        );
        assert!(Timeout::parse("0").is_err());
        assert!(Timeout::parse("-1").is_err());
        assert!(Timeout::parse("ten").is_err());
        assert!(Timeout::parse("5:fatal").is_err());
    }
}
