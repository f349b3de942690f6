//! Reconciling a directory with the hierarchy: read live state, plan, apply.
//!
//! A plan is a value: `plan` builds it from the desired hierarchy and the observed live state
//! without touching the directory, and `apply` runs it. Provider code never sees a dry-run flag.

mod apply;
mod changed;
mod lists;
mod live;
mod plan;
mod settings;

pub use apply::with_retries;
pub use apply::{apply, ApplyOptions, ApplyOutcome, ApplyReport, NoProgress, Progress, RetryPolicy};
pub use changed::changed_groups;
pub use lists::{
    apply_lists, list_hash, plan_lists, save_state, ListOutcome, ListPlan, ListPlanOptions, ListReport, ListWrite,
    StateError, StateReader, WriteReason,
};
pub use live::{
    read_live_groups, read_live_state, read_live_state_delta, read_live_state_with_progress, DeltaRead, LiveGroupState,
    LiveRead, LiveState, ReadError,
};
pub use plan::{
    plan, plan_groups, Change, Conflict, NoLongerDefined, Plan, PlanCounts, PlanOptions, PlanSummary, RemovalLimits,
};
pub use settings::{
    apply_settings, desired_settings, plan_settings, read_settings, FieldChange, SettingsChange, SettingsRead,
    SettingsReport,
};
