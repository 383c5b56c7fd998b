//! What every judge shares: the worst of several states, and details
//! ordered worst first, so no check folds or sorts states by hand.

use crate::status::Status;

/// The worst of the states, OK for none.
pub fn worst(states: impl IntoIterator<Item = Status>) -> Status {
    states.into_iter().fold(Status::Ok, Status::worst)
}

/// Orders `items` worst state first; items of the same state keep their
/// order, so sorting by a second key (size, age) first gives worst, then
/// largest.
pub fn worst_first<T>(items: &mut [T], status: impl Fn(&T) -> Status) {
    items.sort_by_key(|i| std::cmp::Reverse(status(i).rank()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_first_keeps_the_found_order_within_a_state() {
        let mut found = vec![
            (Status::Ok, "a"),
            (Status::Warning, "b"),
            (Status::Critical, "c"),
            (Status::Warning, "d"),
            (Status::Unknown, "e"),
        ];
        assert_eq!(worst(found.iter().map(|f| f.0)), Status::Critical);
        worst_first(&mut found, |f| f.0);
        let lines: Vec<&str> = found.iter().map(|f| f.1).collect();
        assert_eq!(lines, ["c", "e", "b", "d", "a"]);
    }

    #[test]
    fn nothing_found_is_ok() {
        assert_eq!(worst([]), Status::Ok);
    }
}
