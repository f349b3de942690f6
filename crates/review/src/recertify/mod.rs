//! Recertification and reminders: which datasets' member lists are due (or overdue) for their
//! periodic review, and which grants end soon without another way to the same access.
//!
//! Pure: "today" is an argument, the review records come with the definitions
//! (`datasets/<name>/review.toml`), and nothing here reads Git or the network.

mod reminders;
mod schedule;

pub use reminders::{reminders, Reminder, ReminderGrant};
pub use schedule::{review_schedule, ScheduledReview};
