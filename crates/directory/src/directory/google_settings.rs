//! Google group settings through the Groups Settings API (`google-groupssettings1`):
//! `GET` and `PATCH groups/v1/groups/{email}?alt=json`, on the Google provider's client,
//! credentials, endpoint and call counter.
//!
//! Like the rest of the provider: one request per call, no retries (the sync retries from the
//! classified error), and only groups with the owner marker are read or changed. Only the
//! fields the definitions can set are read back; a PATCH carries exactly the fields given.

use google_groupssettings1::api::Groups;

use super::google::{classify, lagging, Failure, GoogleDirectory};
use super::{DirectoryError, GroupSettings, GroupSettingsDirectory};
use crate::definitions::GOOGLE_GROUP_SETTINGS;

impl GroupSettingsDirectory for GoogleDirectory {
    fn read_settings(&self, group_email: &str) -> Result<GroupSettings, DirectoryError> {
        self.owned_group_name(group_email)?;
        let mut observer = self.observer();
        let read = self.runtime.block_on(self.settings_hub.groups().get(group_email).delegate(&mut observer).doit());
        match read {
            Ok((_, groups)) => Ok(settings_of(&groups)),
            Err(error) => Err(match classify(error, &observer) {
                Failure::Denied(message) if message.contains(SCOPE_MESSAGE) => {
                    missing_scope("groupsSettings.groups.get")
                }
                // The group was listed or created as ours: a read that has not caught up yet.
                Failure::NotFound | Failure::Denied(_) => lagging("groupsSettings.groups.get", group_email),
                other => other.into_error("groupsSettings.groups.get", group_email),
            }),
        }
    }

    fn update_settings(&self, group_email: &str, fields: &GroupSettings) -> Result<(), DirectoryError> {
        self.owned_group_name(group_email)?;
        let request = request_of(fields).map_err(|message| {
            DirectoryError::Rejected(format!("groupsSettings.groups.patch {group_email}: {message}"))
        })?;
        let mut observer = self.observer();
        let patched = self
            .runtime
            .block_on(self.settings_hub.groups().patch(request, group_email).delegate(&mut observer).doit());
        match patched {
            Ok(_) => Ok(()),
            Err(error) => Err(match classify(error, &observer) {
                Failure::Denied(message) if message.contains(SCOPE_MESSAGE) => {
                    missing_scope("groupsSettings.groups.patch")
                }
                Failure::NotFound | Failure::Denied(_) => lagging("groupsSettings.groups.patch", group_email),
                other => other.into_error("groupsSettings.groups.patch", group_email),
            }),
        }
    }
}

/// How Google words a 403 for a token without the method's scope.
const SCOPE_MESSAGE: &str = "insufficient authentication scopes";
const SETTINGS_SCOPE: &str = "https://www.googleapis.com/auth/apps.groups.settings";

fn missing_scope(method: &str) -> DirectoryError {
    DirectoryError::MissingScope(format!(
        "{method}: the credentials lack the scope {SETTINGS_SCOPE} (tokens from `gcloud auth print-access-token` and gcloud's default credentials do not carry it); use credentials with that scope, or remove the group settings"
    ))
}

/// The settings the definitions can set, from an API answer.
fn settings_of(groups: &Groups) -> GroupSettings {
    let value = serde_json::to_value(groups).unwrap_or_default();
    GOOGLE_GROUP_SETTINGS
        .iter()
        .filter_map(|spec| {
            let text = value.get(spec.field)?.as_str()?;
            Some((spec.field.to_owned(), text.to_owned()))
        })
        .collect()
}

/// A request body that sets exactly `fields` (the client leaves out unset fields).
fn request_of(fields: &GroupSettings) -> Result<Groups, String> {
    let body: serde_json::Map<String, serde_json::Value> =
        fields.iter().map(|(field, value)| (field.clone(), serde_json::Value::String(value.clone()))).collect();
    serde_json::from_value(serde_json::Value::Object(body)).map_err(|e| format!("cannot build the request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_exactly_the_given_fields_and_answers_read_back() {
        let fields: GroupSettings = [("whoCanJoin", "INVITED_CAN_JOIN"), ("isArchived", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let request = request_of(&fields).unwrap();
        assert_eq!(request.who_can_join.as_deref(), Some("INVITED_CAN_JOIN"));
        assert_eq!(request.is_archived.as_deref(), Some("true"));
        assert_eq!(request.who_can_post_message, None);
        assert_eq!(settings_of(&request), fields);
    }
}
