//! Downstream applications whose member lists follow the groups, as directories: each turns
//! the hierarchy into its own desired "groups" (one per dataset) and goes through the same
//! plan, apply, limits, retries and dry run as the group directories.

pub mod hail;
pub mod metamist;
