//! Infrastructure: datasets × clouds × components → calls on the `Cloud` trait → a Pulumi YAML program.
