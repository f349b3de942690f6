//! When each dataset's next review is due: `review_every` in its dataset.toml, else the
//! organisation's in groups/policy.toml; counted from the last review record.

use crate::definitions::{Date, Definitions, Location, ReviewRecord};
use crate::policy::Policy;

/// One dataset on a review schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledReview<'d> {
    pub dataset: &'d str,
    /// Days between reviews, and where that is set (dataset.toml or policy.toml).
    pub every_days: i64,
    pub every_location: Location,
    pub last: Option<&'d ReviewRecord>,
    /// The day the next review is due; `None` for a dataset never reviewed (due at once).
    pub due_on: Option<Date>,
}

impl ScheduledReview<'_> {
    /// A review is due on its day and after it; a dataset never reviewed is due at once.
    pub fn is_due(&self, today: Date) -> bool {
        self.due_on.is_none_or(|due| due <= today)
    }

    /// Whether the review is more than `grace_days` late. A dataset never reviewed has no
    /// date to be late from: it is due, and the scheduled review opens its first review.
    pub fn is_overdue(&self, today: Date, grace_days: i64) -> bool {
        self.due_on.is_some_and(|due| due.add_days(grace_days) < today)
    }
}

/// Every dataset with a review interval, by name.
pub fn review_schedule<'d>(policy: &Policy, definitions: &'d Definitions) -> Vec<ScheduledReview<'d>> {
    definitions
        .datasets
        .values()
        .filter_map(|dataset| {
            let (every_days, every_location) = match (&dataset.review_every, &policy.review_every) {
                (Some((days, location)), _) => (*days, location.clone()),
                (None, Some(rule)) => (rule.value, rule.location.clone()),
                (None, None) => return None,
            };
            let last = dataset.last_review.as_ref();
            Some(ScheduledReview {
                dataset: &dataset.name,
                every_days,
                every_location,
                last,
                due_on: last.map(|record| record.reviewed_on.add_days(every_days)),
            })
        })
        .collect()
}
