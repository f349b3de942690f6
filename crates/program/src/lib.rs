//! The infrastructure program: per dataset, the buckets, machine accounts, secrets, registries,
//! budgets and IAM grants the expansion implies, through one `Cloud` trait (GCP, Azure, dry run),
//! rendered as a Pulumi YAML program; and `load`, the front half of every command.

// The core's modules under their own names, so paths read `crate::definitions::…` in every crate.
use cpg_infra_core::{definitions, hierarchy};

pub mod infra;
pub mod load;
