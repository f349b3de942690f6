//! Google group settings: which Groups Settings API fields the definitions may set, how they
//! are written in TOML, and the values each takes.
//!
//! The TOML keys are the API's field names in snake_case (`whoCanJoin` → `who_can_join`), the
//! choices its enum values in lowercase (`INVITED_CAN_JOIN` → `invited_can_join`), and the two
//! flags TOML booleans (the API writes them as the strings `"true"` / `"false"`). Converted
//! settings hold the API's own field names and wire values, so nothing downstream translates.

use std::collections::BTreeMap;

/// One setting the definitions may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// The key in TOML.
    pub key: &'static str,
    /// The Groups Settings API field.
    pub field: &'static str,
    /// The API's values, uppercase; empty for a flag (`"true"` / `"false"`).
    pub choices: &'static [&'static str],
}

/// Every setting, in the order they are documented.
pub const GOOGLE_GROUP_SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "who_can_view_membership",
        field: "whoCanViewMembership",
        // The Groups Settings discovery document (google-groupssettings1) has no
        // ALL_OWNERS_CAN_VIEW for this field, though some pages list it.
        choices: &["ALL_IN_DOMAIN_CAN_VIEW", "ALL_MEMBERS_CAN_VIEW", "ALL_MANAGERS_CAN_VIEW"],
    },
    SettingSpec {
        key: "who_can_join",
        field: "whoCanJoin",
        choices: &["ANYONE_CAN_JOIN", "ALL_IN_DOMAIN_CAN_JOIN", "INVITED_CAN_JOIN", "CAN_REQUEST_TO_JOIN"],
    },
    SettingSpec {
        key: "who_can_post_message",
        field: "whoCanPostMessage",
        choices: &[
            "NONE_CAN_POST",
            "ALL_MANAGERS_CAN_POST",
            "ALL_MEMBERS_CAN_POST",
            "ALL_OWNERS_CAN_POST",
            "ALL_IN_DOMAIN_CAN_POST",
            "ANYONE_CAN_POST",
        ],
    },
    SettingSpec { key: "allow_external_members", field: "allowExternalMembers", choices: &[] },
    SettingSpec { key: "is_archived", field: "isArchived", choices: &[] },
    SettingSpec { key: "archive_only", field: "archiveOnly", choices: &[] },
];

/// Settings for Google groups: API field (`whoCanJoin`) → value as the API writes it
/// (`INVITED_CAN_JOIN`, `"true"`). A field that is absent is left as the group has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoogleGroupSettings {
    pub fields: BTreeMap<String, String>,
}

impl GoogleGroupSettings {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// These settings on top of `defaults`: a field set here wins, the others come from there.
    pub fn over(&self, defaults: &GoogleGroupSettings) -> GoogleGroupSettings {
        let mut fields = defaults.fields.clone();
        fields.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        GoogleGroupSettings { fields }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_override_wins_field_by_field() {
        let settings = |pairs: &[(&str, &str)]| GoogleGroupSettings {
            fields: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        let defaults = settings(&[("whoCanJoin", "INVITED_CAN_JOIN"), ("isArchived", "false")]);
        let group = settings(&[("isArchived", "true")]);
        assert_eq!(group.over(&defaults), settings(&[("whoCanJoin", "INVITED_CAN_JOIN"), ("isArchived", "true")]));
        assert_eq!(GoogleGroupSettings::default().over(&defaults), defaults);
    }

    #[test]
    fn toml_keys_are_the_api_fields_in_snake_case() {
        for spec in GOOGLE_GROUP_SETTINGS {
            let snake: String = spec
                .field
                .chars()
                .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
                .collect();
            assert_eq!(spec.key, snake);
        }
    }
}
