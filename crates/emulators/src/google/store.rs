//! The in-memory Cloud Identity customer behind the emulator: groups, memberships, paging,
//! and the replication lag the fault plan asks for. It answers parsed requests with JSON values
//! or API errors and never sees HTTP.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{ApiError, Code, Context, EmulatedGroup, MemberInfo, Route, SeedGroup};
use cpg_infra_core::definitions::Date;

pub(super) const MEMBER: &str = "MEMBER";
const GROUP_TYPE: &str = "type.googleapis.com/google.apps.cloudidentity.groups.v1.Group";
const MEMBERSHIP_TYPE: &str = "type.googleapis.com/google.apps.cloudidentity.groups.v1.Membership";
const EMPTY_TYPE: &str = "type.googleapis.com/google.protobuf.Empty";

/// The settings every new group starts with (a subset of the Groups Settings API's fields).
pub(super) const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("whoCanViewMembership", "ALL_MEMBERS_CAN_VIEW"),
    ("whoCanJoin", "CAN_REQUEST_TO_JOIN"),
    ("whoCanPostMessage", "ANYONE_CAN_POST"),
    ("allowExternalMembers", "false"),
    ("isArchived", "false"),
];

/// The values the Groups Settings API takes for each field the emulator keeps (written out
/// here, not taken from the definitions, so that a wrong value there fails against this): the
/// Groups Settings v1 discovery document, as the `google-groupssettings1` crate documents each
/// field (`whoCanViewMembership` has no `ALL_OWNERS_CAN_VIEW` there).
const SETTING_VALUES: &[(&str, &[&str])] = &[
    ("whoCanViewMembership", &["ALL_IN_DOMAIN_CAN_VIEW", "ALL_MEMBERS_CAN_VIEW", "ALL_MANAGERS_CAN_VIEW"]),
    ("whoCanJoin", &["ANYONE_CAN_JOIN", "ALL_IN_DOMAIN_CAN_JOIN", "INVITED_CAN_JOIN", "CAN_REQUEST_TO_JOIN"]),
    (
        "whoCanPostMessage",
        &[
            "NONE_CAN_POST",
            "ALL_MANAGERS_CAN_POST",
            "ALL_MEMBERS_CAN_POST",
            "ALL_OWNERS_CAN_POST",
            "ALL_IN_DOMAIN_CAN_POST",
            "ANYONE_CAN_POST",
        ],
    ),
    ("allowExternalMembers", &["true", "false"]),
    ("isArchived", &["true", "false"]),
    ("archiveOnly", &["true", "false"]),
];

/// The request body of `groups.create` and `groups.patch` (output-only fields are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    group_key: Option<EntityKey>,
    parent: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct EntityKey {
    id: Option<String>,
}

/// The request body of `memberships.create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipBody {
    preferred_member_key: Option<EntityKey>,
    roles: Option<Vec<RoleBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    name: Option<String>,
    expiry_detail: Option<ExpiryBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExpiryBody {
    expire_time: Option<String>,
}

/// The request body of `memberships.modifyMembershipRoles`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifyRolesBody {
    add_roles: Option<Vec<RoleBody>>,
    remove_roles: Option<Vec<String>>,
    update_roles_params: Option<Vec<UpdateRoleBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateRoleBody {
    field_mask: Option<String>,
    membership_role: Option<RoleBody>,
}

/// The in-memory Cloud Identity customer.
pub(super) struct Directory {
    /// `customers/{customer}`.
    parent: String,
    /// Whether the customer's edition has membership expiry (Workspace Enterprise / Education,
    /// Cloud Identity Premium; "manage membership expirations").
    pub(super) premium: bool,
    /// Lowercased email → group.
    groups: BTreeMap<String, GroupRecord>,
    /// Group id → lowercased email.
    group_emails: HashMap<String, String>,
    /// Member email → membership id. A member has the same id in every group, as with the
    /// real API (it is the member's own opaque id).
    member_ids: HashMap<String, String>,
    /// Membership id → member email.
    member_emails: HashMap<String, String>,
    /// Membership changes, for the Reports API (`reports.rs`).
    pub(super) audit: super::reports::ActivityLog,
    /// Who the audit log names for changes made through the API: the sync's own account.
    pub(super) api_actor: String,
    /// Ids handed out so far (groups and members count separately).
    groups_created: u64,
    members_seen: u64,
}

struct GroupRecord {
    id: String,
    email: String,
    display_name: String,
    description: String,
    labels: BTreeMap<String, String>,
    create_time: String,
    update_time: String,
    /// Lowercased member email → membership.
    members: BTreeMap<String, MemberRecord>,
    /// Groups Settings API field → value.
    settings: BTreeMap<String, String>,
    /// `groups.list` requests that will still leave it out (replication lag).
    listing_lag: u32,
    /// Direct reads that will still answer 404 (replication lag).
    read_lag: u32,
}

struct MemberRecord {
    roles: Vec<String>,
    expire_time: Option<String>,
    create_time: String,
    update_time: String,
    /// Fixed when created through the API; `None` for seeded and hand-made members, whose type
    /// follows the directory when read.
    kind: Option<&'static str>,
    /// `memberships.list` requests of its group that will still leave it out (a stale read).
    listing_lag: u32,
}

/// A membership about to be stored.
pub(super) struct NewMember {
    pub(super) roles: Vec<String>,
    pub(super) expire_time: Option<String>,
    pub(super) kind: Option<&'static str>,
    pub(super) listing_lag: u32,
}

impl NewMember {
    /// A plain member put in by hand or by a seed: visible at once, typed when read.
    pub(super) fn seeded() -> NewMember {
        NewMember { roles: vec![MEMBER.to_owned()], expire_time: None, kind: None, listing_lag: 0 }
    }
}

impl Directory {
    pub(super) fn new(customer: &str) -> Directory {
        Directory {
            parent: format!("customers/{customer}"),
            premium: true,
            audit: super::reports::ActivityLog::default(),
            api_actor: String::new(),
            groups: BTreeMap::new(),
            group_emails: HashMap::new(),
            member_ids: HashMap::new(),
            member_emails: HashMap::new(),
            groups_created: 0,
            members_seen: 0,
        }
    }

    pub(super) fn answer(&mut self, route: &Route, context: &Context, max_page_size: usize) -> Result<Value, ApiError> {
        match route {
            Route::CreateGroup => self.create_group(context),
            Route::ListGroups => {
                let page = self.list_groups(context, max_page_size);
                self.age_group_listings();
                page
            }
            Route::LookupGroup => self.lookup_group(context),
            Route::GetGroup(id) => {
                self.read_lagging_group(id)?;
                Ok(self.group_json(self.group(id)?, true))
            }
            Route::PatchGroup(id) => self.patch_group(id, context),
            Route::DeleteGroup(id) => self.delete_group(id),
            Route::CreateMembership(id) => self.create_membership(id, context),
            Route::ListMemberships(id) => {
                self.read_lagging_group(id)?;
                let page = self.list_memberships(id, context, max_page_size);
                self.age_member_listings(id);
                page
            }
            Route::LookupMembership(id) => {
                self.read_lagging_group(id)?;
                self.lookup_membership(id, context)
            }
            Route::GetMembership(id, member_id) => {
                self.read_lagging_group(id)?;
                let group = self.group(id)?;
                let (email, member) = self.membership(group, member_id)?;
                Ok(self.membership_json(group, email, member, true))
            }
            Route::DeleteMembership(id, member_id) => self.delete_membership(id, member_id),
            Route::ModifyMembershipRoles(id, member_id) => self.modify_membership_roles(id, member_id, context),
            Route::GetSettings(email) => {
                let id = self.settings_group(email, context)?;
                self.read_lagging_group(&id)?;
                Ok(self.settings_json(email))
            }
            Route::PatchSettings(email) => {
                self.settings_group(email, context)?;
                self.patch_settings(email, context)
            }
            Route::ListActivities { user_key, application } => {
                let customer = self.parent.trim_start_matches("customers/").to_owned();
                self.audit.list(user_key, application, &customer, context, max_page_size)
            }
            Route::Unknown
            | Route::ListObjects(_)
            | Route::InsertObject(_)
            | Route::DeleteObject(..)
            | Route::AccessSecret { .. } => {
                Err(ApiError { code: Code::NotFound, message: "Method not found.".to_owned() })
            }
        }
    }

    /// A direct read of a group that has not replicated yet answers 404 and uses up one read.
    fn read_lagging_group(&mut self, id: &str) -> Result<(), ApiError> {
        let Some(email) = self.group_emails.get(id) else { return Ok(()) };
        let Some(group) = self.groups.get_mut(email) else { return Ok(()) };
        if group.read_lag == 0 {
            return Ok(());
        }
        group.read_lag -= 1;
        Err(ApiError::denied(&format!("groups/{id}")))
    }

    /// One more `groups.list` answered: lagging groups are one request closer to showing.
    fn age_group_listings(&mut self) {
        for group in self.groups.values_mut() {
            group.listing_lag = group.listing_lag.saturating_sub(1);
        }
    }

    /// One more `memberships.list` of the group answered: its lagging members are one request
    /// closer to showing.
    fn age_member_listings(&mut self, id: &str) {
        let Some(email) = self.group_emails.get(id) else { return };
        if let Some(group) = self.groups.get_mut(email) {
            for member in group.members.values_mut() {
                member.listing_lag = member.listing_lag.saturating_sub(1);
            }
        }
    }

    fn create_group(&mut self, context: &Context) -> Result<Value, ApiError> {
        match context.param("initialGroupConfig") {
            None | Some("EMPTY" | "WITH_INITIAL_OWNER" | "INITIAL_GROUP_CONFIG_UNSPECIFIED") => {}
            Some(other) => return Err(ApiError::invalid(&format!("invalid initialGroupConfig `{other}`"))),
        }
        let body: GroupBody = context.json()?;
        let email = body.group_key.and_then(|key| key.id).unwrap_or_default().to_ascii_lowercase();
        if !is_email(&email) {
            return Err(ApiError::invalid("groupKey.id must be the group's email address"));
        }
        match body.parent.as_deref() {
            None | Some("") => return Err(ApiError::invalid("parent is required")),
            Some(parent) if parent != self.parent => {
                return Err(ApiError::invalid(&format!("parent must be {}, not {parent}", self.parent)))
            }
            Some(_) => {}
        }
        let labels = body.labels.unwrap_or_default();
        if labels.is_empty() {
            return Err(ApiError::invalid("labels are required"));
        }
        if context.faults.reject_groups.iter().any(|rejected| rejected.eq_ignore_ascii_case(&email)) {
            return Err(ApiError::invalid(&format!("Error(4012): Cannot create group {email}.")));
        }
        if self.groups.contains_key(&email) {
            return Err(ApiError {
                code: Code::AlreadyExists,
                message: format!("Error(4003): Cannot create group {email}: entity already exists."),
            });
        }
        let key = self.new_group(&email);
        let group = self.groups.get_mut(&key).expect("just inserted");
        group.display_name = body.display_name.unwrap_or_default();
        group.description = body.description.unwrap_or_default();
        group.labels = labels;
        group.listing_lag = context.faults.group_listing_lag;
        group.read_lag = context.faults.group_read_lag;
        let group = &self.groups[&key];
        Ok(operation(GROUP_TYPE, self.group_json(group, true)))
    }

    fn list_groups(&self, context: &Context, max_page_size: usize) -> Result<Value, ApiError> {
        let parent = context.param("parent").unwrap_or_default();
        if parent.is_empty() {
            return Err(ApiError::invalid("parent is required"));
        }
        if !parent.starts_with("customers/") && !parent.starts_with("identitysources/") {
            return Err(ApiError::invalid(&format!("invalid parent `{parent}`")));
        }
        if parent != self.parent {
            return Err(ApiError {
                code: Code::PermissionDenied,
                message: format!("Error(2028): Permission denied for resource {parent} (or it may not exist)."),
            });
        }
        let full = parse_view(context.param("view"))?;
        let size = page_size(context.param("pageSize"), full, max_page_size)?;
        let scope = format!("groups|{parent}");
        let after = page_start(context.param("pageToken"), &scope)?;
        let items =
            self.groups.range::<str, _>((after.as_deref().map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded));
        let items = items.filter(|(_, group)| group.listing_lag == 0);
        let (page, last) = take_page(items.map(|(key, group)| (key.as_str(), group)), size);
        let mut response = Map::new();
        if !page.is_empty() {
            let groups = page.into_iter().map(|group| self.group_json(group, full)).collect();
            response.insert("groups".to_owned(), Value::Array(groups));
        }
        if let Some(last) = last {
            response.insert("nextPageToken".to_owned(), Value::String(encode_page_token(&scope, last)));
        }
        Ok(Value::Object(response))
    }

    fn lookup_group(&mut self, context: &Context) -> Result<Value, ApiError> {
        let email = context.param("groupKey.id").unwrap_or_default().to_ascii_lowercase();
        if email.is_empty() {
            return Err(ApiError::invalid("groupKey.id is required"));
        }
        let id = match self.groups.get(&email) {
            Some(group) => group.id.clone(),
            None => return Err(ApiError::denied(&format!("groups/{email}"))),
        };
        self.read_lagging_group(&id).map_err(|_| ApiError::denied(&format!("groups/{email}")))?;
        Ok(json!({ "name": format!("groups/{id}") }))
    }

    fn patch_group(&mut self, id: &str, context: &Context) -> Result<Value, ApiError> {
        let key = self.group(id)?.email.clone();
        let mask = context.param("updateMask").unwrap_or_default();
        if mask.is_empty() {
            return Err(ApiError::invalid("updateMask is required"));
        }
        let mut fields = Vec::new();
        for field in mask.split(',').map(str::trim) {
            match field {
                "displayName" | "display_name" | "description" | "labels" => fields.push(field),
                other => return Err(ApiError::invalid(&format!("field `{other}` cannot be updated"))),
            }
        }
        let body: GroupBody = context.json()?;
        let group = self.groups.get_mut(&key).expect("looked up above");
        for field in fields {
            match field {
                "description" => group.description = body.description.clone().unwrap_or_default(),
                "labels" => group.labels = body.labels.clone().unwrap_or_default(),
                _ => group.display_name = body.display_name.clone().unwrap_or_default(),
            }
        }
        group.update_time = rfc3339(SystemTime::now());
        let group = &self.groups[&key];
        Ok(operation(GROUP_TYPE, self.group_json(group, true)))
    }

    fn delete_group(&mut self, id: &str) -> Result<Value, ApiError> {
        let key = self.group(id)?.email.clone();
        self.groups.remove(&key);
        self.group_emails.remove(id);
        // A deleted group stops being a member anywhere.
        for group in self.groups.values_mut() {
            group.members.remove(&key);
        }
        Ok(operation(EMPTY_TYPE, json!({})))
    }

    fn create_membership(&mut self, id: &str, context: &Context) -> Result<Value, ApiError> {
        let key = self.group(id)?.email.clone();
        let body: MembershipBody = context.json()?;
        let email = body.preferred_member_key.and_then(|key| key.id).unwrap_or_default().to_ascii_lowercase();
        if !is_email(&email) {
            return Err(ApiError::invalid("preferredMemberKey.id must be the member's email address"));
        }
        if email == key {
            return Err(ApiError::invalid("a group cannot be a member of itself"));
        }
        if context.faults.reject_members.iter().any(|rejected| rejected.eq_ignore_ascii_case(&email)) {
            return Err(ApiError::invalid(&format!("Error(4012): {email} cannot be added to group {key}.")));
        }
        // A user that does not exist is "permission denied ... (or it may not exist)", as a
        // missing group is (Cloud Identity answers; GoogleCloudPlatform/jit-groups maps 403 so).
        if context.faults.unknown_members.iter().any(|unknown| unknown.eq_ignore_ascii_case(&email)) {
            return Err(ApiError::denied(&format!("memberKey {email}")));
        }
        let (roles, expire_time) = parse_roles(body.roles.unwrap_or_default())?;
        if expire_time.is_some() && !self.premium {
            return Err(ApiError::expiry_not_available());
        }
        if self.groups[&key].members.contains_key(&email) {
            return Err(ApiError {
                code: Code::AlreadyExists,
                message: format!("Error(4003): Cannot create membership: {email} is already a member of {key}."),
            });
        }
        let kind = self.member_type(&email);
        let listing_lag = context.faults.membership_listing_lag;
        self.add_member(&key, &email, NewMember { roles, expire_time, kind: Some(kind), listing_lag });
        let actor = self.api_actor.clone();
        self.audit.record(&actor, true, &key, &email, kind);
        let group = &self.groups[&key];
        let member = &group.members[&email];
        Ok(operation(MEMBERSHIP_TYPE, self.membership_json(group, &email, member, true)))
    }

    fn list_memberships(&self, id: &str, context: &Context, max_page_size: usize) -> Result<Value, ApiError> {
        let group = self.group(id)?;
        let full = parse_view(context.param("view"))?;
        let size = page_size(context.param("pageSize"), full, max_page_size)?;
        let scope = format!("memberships|{id}");
        let after = page_start(context.param("pageToken"), &scope)?;
        let items = group
            .members
            .range::<str, _>((after.as_deref().map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded))
            .filter(|(_, member)| member.listing_lag == 0);
        let (page, last) = take_page(items.map(|(email, member)| (email.as_str(), (email, member))), size);
        let mut response = Map::new();
        if !page.is_empty() {
            let memberships =
                page.into_iter().map(|(email, member)| self.membership_json(group, email, member, full)).collect();
            response.insert("memberships".to_owned(), Value::Array(memberships));
        }
        if let Some(last) = last {
            response.insert("nextPageToken".to_owned(), Value::String(encode_page_token(&scope, last)));
        }
        Ok(Value::Object(response))
    }

    fn lookup_membership(&self, id: &str, context: &Context) -> Result<Value, ApiError> {
        let group = self.group(id)?;
        let email = context.param("memberKey.id").unwrap_or_default().to_ascii_lowercase();
        if email.is_empty() {
            return Err(ApiError::invalid("memberKey.id is required"));
        }
        if !group.members.contains_key(&email) {
            return Err(ApiError::not_found(&format!("membership of {email} in groups/{id}")));
        }
        Ok(json!({ "name": format!("groups/{id}/memberships/{}", self.member_ids[&email]) }))
    }

    fn delete_membership(&mut self, id: &str, member_id: &str) -> Result<Value, ApiError> {
        let group = self.group(id)?;
        let (email, _) = self.membership(group, member_id)?;
        let (key, email) = (group.email.clone(), email.to_owned());
        self.groups.get_mut(&key).expect("looked up above").members.remove(&email);
        let (actor, kind) = (self.api_actor.clone(), self.member_type(&email));
        self.audit.record(&actor, false, &key, &email, kind);
        Ok(operation(EMPTY_TYPE, json!({})))
    }

    /// `memberships.modifyMembershipRoles`: adds or removes roles, or updates the `MEMBER`
    /// role's expiry (`updateRolesParams` with the field mask `expiryDetail.expire_time`; a role
    /// without `expiryDetail` clears it). Updating cannot be combined with adding or removing.
    fn modify_membership_roles(&mut self, id: &str, member_id: &str, context: &Context) -> Result<Value, ApiError> {
        let group = self.group(id)?;
        let (email, _) = self.membership(group, member_id)?;
        let (key, email) = (group.email.clone(), email.to_owned());
        let body: ModifyRolesBody = context.json()?;
        let (add, remove, update) = (
            body.add_roles.unwrap_or_default(),
            body.remove_roles.unwrap_or_default(),
            body.update_roles_params.unwrap_or_default(),
        );
        let changes_roles = !add.is_empty() || !remove.is_empty();
        if !update.is_empty() && changes_roles {
            return Err(ApiError::invalid("updateRolesParams cannot be combined with addRoles or removeRoles"));
        }
        if add.is_empty() && remove.is_empty() && update.is_empty() {
            return Err(ApiError::invalid("one of addRoles, removeRoles or updateRolesParams is required"));
        }
        let mut expire_update = None;
        for params in update {
            let mask = params.field_mask.unwrap_or_default();
            if !mask
                .split(',')
                .all(|field| matches!(field.trim(), "expiryDetail.expireTime" | "expiry_detail.expire_time"))
            {
                return Err(ApiError::invalid(&format!(
                    "fieldMask `{mask}` may only contain expiry_detail.expire_time"
                )));
            }
            let role = params.membership_role.unwrap_or_default();
            if role.name.as_deref() != Some(MEMBER) {
                return Err(ApiError::invalid("only the MEMBER role can be updated"));
            }
            expire_update = Some(role.expiry_detail.and_then(|detail| detail.expire_time));
        }
        if matches!(expire_update, Some(Some(_))) && !self.premium {
            return Err(ApiError::expiry_not_available());
        }
        if remove.iter().any(|name| name == MEMBER) {
            return Err(ApiError::invalid("the MEMBER role cannot be removed; delete the membership instead"));
        }
        let added = add.into_iter().map(|role| role.name.unwrap_or_default()).collect::<Vec<_>>();
        if let Some(bad) = added.iter().find(|name| !matches!(name.as_str(), "OWNER" | "MANAGER" | MEMBER)) {
            return Err(ApiError::invalid(&format!("invalid role `{bad}`; expected OWNER, MANAGER or MEMBER")));
        }
        let member = self.groups.get_mut(&key).and_then(|g| g.members.get_mut(&email)).expect("looked up above");
        for name in added {
            if !member.roles.contains(&name) {
                member.roles.push(name);
            }
        }
        member.roles.retain(|name| !remove.contains(name));
        if let Some(expire_time) = expire_update {
            member.expire_time = expire_time;
        }
        member.update_time = rfc3339(SystemTime::now());
        let group = &self.groups[&key];
        Ok(json!({ "membership": self.membership_json(group, &email, &group.members[&email], true) }))
    }

    /// The type a new membership of `email` gets: what the email names in the directory now.
    fn member_type(&self, email: &str) -> &'static str {
        if self.groups.contains_key(email) {
            "GROUP"
        } else if email.ends_with(".gserviceaccount.com") {
            "SERVICE_ACCOUNT"
        } else {
            "USER"
        }
    }

    fn group(&self, id: &str) -> Result<&GroupRecord, ApiError> {
        self.group_emails
            .get(id)
            .and_then(|email| self.groups.get(email))
            .ok_or_else(|| ApiError::denied(&format!("groups/{id}")))
    }

    fn membership<'a>(
        &'a self,
        group: &'a GroupRecord,
        member_id: &str,
    ) -> Result<(&'a str, &'a MemberRecord), ApiError> {
        self.member_emails
            .get(member_id)
            .and_then(|email| group.members.get_key_value(email))
            .map(|(email, member)| (email.as_str(), member))
            .ok_or_else(|| ApiError::not_found(&format!("groups/{}/memberships/{member_id}", group.id)))
    }

    /// The id of the group a settings request names; 404 for a group the customer does not
    /// have, 400 unless the request asks for JSON.
    fn settings_group(&self, email: &str, context: &Context) -> Result<String, ApiError> {
        // The API's own default format is Atom; clients ask for JSON.
        match context.param("alt") {
            Some("json") => {}
            other => {
                let asked = other.unwrap_or("atom (the default)");
                return Err(ApiError::invalid(&format!("the emulator answers alt=json only, not {asked}")));
            }
        }
        self.groups
            .get(&email.to_ascii_lowercase())
            .map(|group| group.id.clone())
            .ok_or_else(|| ApiError::not_found(&format!("group {email}")))
    }

    /// Changes the fields the body carries; an unknown field or value changes nothing.
    fn patch_settings(&mut self, email: &str, context: &Context) -> Result<Value, ApiError> {
        let body: Map<String, Value> = context.json()?;
        let mut changes = Vec::new();
        for (field, value) in &body {
            // Read-only fields a client may send back.
            if field == "kind" || field == "email" {
                continue;
            }
            let Some((_, allowed)) = SETTING_VALUES.iter().find(|(name, _)| name == field) else {
                return Err(ApiError::invalid(&format!("field `{field}` is not supported by the emulator")));
            };
            match value.as_str() {
                Some(text) if allowed.contains(&text) => changes.push((field.clone(), text.to_owned())),
                _ => return Err(ApiError::invalid(&format!("Invalid value for: {field}: {value}"))),
            }
        }
        let key = email.to_ascii_lowercase();
        let group = self.groups.get_mut(&key).expect("checked by settings_group");
        // groupssettings `archiveOnly` / `whoCanPostMessage`: NONE_CAN_POST only with
        // archiveOnly true, which sets it; archiveOnly back to false sets ALL_MANAGERS_CAN_POST.
        let mut after = group.settings.clone();
        after.extend(changes.iter().cloned());
        let archive_changed = changes.iter().any(|(field, _)| field == "archiveOnly");
        let archive_only = after.get("archiveOnly").map(String::as_str) == Some("true");
        if archive_changed {
            let post = if archive_only { "NONE_CAN_POST" } else { "ALL_MANAGERS_CAN_POST" };
            let asked = changes.iter().find(|(field, _)| field == "whoCanPostMessage").map(|(_, v)| v.as_str());
            if !archive_only || asked.is_none() {
                after.insert("whoCanPostMessage".to_owned(), post.to_owned());
            }
        }
        if after.get("whoCanPostMessage").map(String::as_str) == Some("NONE_CAN_POST") && !archive_only {
            return Err(ApiError::invalid(
                "Invalid value for: whoCanPostMessage: NONE_CAN_POST needs archiveOnly true",
            ));
        }
        group.settings = after;
        Ok(self.settings_json(&key))
    }

    fn settings_json(&self, email: &str) -> Value {
        let group = &self.groups[&email.to_ascii_lowercase()];
        let mut object = Map::new();
        object.insert("kind".to_owned(), json!("groupsSettings#groups"));
        object.insert("email".to_owned(), json!(group.email));
        object.insert("name".to_owned(), json!(group.display_name));
        object.insert("description".to_owned(), json!(group.description));
        for (field, value) in &group.settings {
            object.insert(field.clone(), json!(value));
        }
        Value::Object(object)
    }

    /// A group's settings, for assertions.
    pub(super) fn settings(&self, group: &str) -> BTreeMap<String, String> {
        self.groups.get(group).map(|g| g.settings.clone()).unwrap_or_default()
    }

    /// Sets one setting as if by hand.
    pub(super) fn set_setting(&mut self, group: &str, field: &str, value: &str) {
        if let Some(record) = self.groups.get_mut(group) {
            record.settings.insert(field.to_owned(), value.to_owned());
        }
    }

    /// Adds an empty group with a fresh opaque id; returns its key.
    fn new_group(&mut self, email: &str) -> String {
        self.groups_created += 1;
        let id = format!("0{}", opaque_id(self.groups_created, 0x9E37_79B9_7F4A_7C15));
        let now = rfc3339(SystemTime::now());
        self.group_emails.insert(id.clone(), email.to_owned());
        self.groups.insert(
            email.to_owned(),
            GroupRecord {
                id,
                email: email.to_owned(),
                display_name: String::new(),
                description: String::new(),
                labels: BTreeMap::new(),
                create_time: now.clone(),
                update_time: now,
                members: BTreeMap::new(),
                settings: DEFAULT_SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                listing_lag: 0,
                read_lag: 0,
            },
        );
        email.to_owned()
    }

    /// Adds (or replaces) a membership in the group with key `group`.
    pub(super) fn add_member(&mut self, group: &str, member: &str, new: NewMember) {
        let email = member.to_ascii_lowercase();
        if !self.member_ids.contains_key(&email) {
            self.members_seen += 1;
            let id = format!("1{}", opaque_id(self.members_seen, 0xD1B5_4A32_D192_ED03));
            self.member_ids.insert(email.clone(), id.clone());
            self.member_emails.insert(id, email.clone());
        }
        let now = rfc3339(SystemTime::now());
        let record = MemberRecord {
            roles: new.roles,
            expire_time: new.expire_time,
            create_time: now.clone(),
            update_time: now,
            kind: new.kind,
            listing_lag: new.listing_lag,
        };
        if let Some(group) = self.groups.get_mut(group) {
            group.members.insert(email, record);
        }
    }

    /// The key of the group with this email, for the direct (test-side) edits.
    /// Removes a member as if by hand; absent members are ignored.
    pub(super) fn remove_member(&mut self, group: &str, member: &str) {
        if let Some(record) = self.groups.get_mut(group) {
            record.members.remove(&member.to_ascii_lowercase());
        }
    }

    pub(super) fn group_key(&self, email: &str) -> String {
        let key = email.to_ascii_lowercase();
        assert!(self.groups.contains_key(&key), "the emulator has no group {email}");
        key
    }

    pub(super) fn insert_seed(&mut self, seed: SeedGroup) {
        let key = seed.email.to_ascii_lowercase();
        if !self.groups.contains_key(&key) {
            self.new_group(&key);
        }
        let group = self.groups.get_mut(&key).expect("present");
        group.display_name = seed.display_name;
        group.description = seed.description;
        group.labels = seed.labels;
        group.members.clear();
        for member in seed.members {
            self.add_member(&key, &member, NewMember::seeded());
        }
    }

    pub(super) fn snapshot(&self) -> BTreeMap<String, EmulatedGroup> {
        self.groups
            .iter()
            .map(|(key, group)| {
                let members = group
                    .members
                    .iter()
                    .map(|(email, member)| {
                        let info = MemberInfo {
                            roles: member.roles.clone(),
                            expire_time: member.expire_time.clone(),
                            kind: member.kind.unwrap_or_else(|| self.member_type(email)).to_owned(),
                        };
                        (email.clone(), info)
                    })
                    .collect();
                let emulated = EmulatedGroup {
                    name: format!("groups/{}", group.id),
                    email: group.email.clone(),
                    display_name: group.display_name.clone(),
                    description: group.description.clone(),
                    labels: group.labels.clone(),
                    members,
                };
                (key.clone(), emulated)
            })
            .collect()
    }

    fn group_json(&self, group: &GroupRecord, full: bool) -> Value {
        let mut object = Map::new();
        object.insert("name".to_owned(), json!(format!("groups/{}", group.id)));
        object.insert("groupKey".to_owned(), json!({ "id": group.email }));
        object.insert("parent".to_owned(), json!(self.parent));
        if !group.display_name.is_empty() {
            object.insert("displayName".to_owned(), json!(group.display_name));
        }
        if !group.description.is_empty() {
            object.insert("description".to_owned(), json!(group.description));
        }
        if !group.labels.is_empty() {
            object.insert("labels".to_owned(), json!(group.labels));
        }
        if full {
            object.insert("createTime".to_owned(), json!(group.create_time));
            object.insert("updateTime".to_owned(), json!(group.update_time));
        }
        Value::Object(object)
    }

    fn membership_json(&self, group: &GroupRecord, email: &str, member: &MemberRecord, full: bool) -> Value {
        let roles: Vec<Value> = member
            .roles
            .iter()
            .map(|role| match (&member.expire_time, full && role == MEMBER) {
                (Some(expire), true) => json!({ "name": role, "expiryDetail": { "expireTime": expire } }),
                _ => json!({ "name": role }),
            })
            .collect();
        let member_type = member.kind.unwrap_or_else(|| self.member_type(email));
        let mut object = Map::new();
        let id = self.member_ids.get(email).map(String::as_str).unwrap_or_default();
        object.insert("name".to_owned(), json!(format!("groups/{}/memberships/{id}", group.id)));
        object.insert("preferredMemberKey".to_owned(), json!({ "id": email }));
        object.insert("roles".to_owned(), Value::Array(roles));
        object.insert("type".to_owned(), json!(member_type));
        if full {
            object.insert("createTime".to_owned(), json!(member.create_time));
            object.insert("updateTime".to_owned(), json!(member.update_time));
        }
        Value::Object(object)
    }
}

/// A finished long-running operation carrying `response` of type `type_url`.
fn operation(type_url: &str, response: Value) -> Value {
    let mut response = match response {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    response.insert("@type".to_owned(), json!(type_url));
    json!({ "done": true, "response": response })
}

/// Role names and the `MEMBER` role's expiry; an empty list means `MEMBER` alone.
fn parse_roles(roles: Vec<RoleBody>) -> Result<(Vec<String>, Option<String>), ApiError> {
    if roles.is_empty() {
        return Ok((vec![MEMBER.to_owned()], None));
    }
    let mut names = Vec::new();
    let mut expire_time = None;
    for role in roles {
        let name = role.name.unwrap_or_default();
        if !matches!(name.as_str(), "OWNER" | "MANAGER" | MEMBER) {
            return Err(ApiError::invalid(&format!("invalid role `{name}`; expected OWNER, MANAGER or MEMBER")));
        }
        if names.contains(&name) {
            return Err(ApiError::invalid(&format!("role {name} is given twice")));
        }
        if let Some(expire) = role.expiry_detail.and_then(|detail| detail.expire_time) {
            if name != MEMBER {
                return Err(ApiError::invalid("expiryDetail is allowed only on the MEMBER role"));
            }
            expire_time = Some(expire);
        }
        names.push(name);
    }
    if !names.iter().any(|name| name == MEMBER) {
        return Err(ApiError::invalid("the MEMBER role is required"));
    }
    Ok((names, expire_time))
}

fn is_email(text: &str) -> bool {
    text.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
}

/// `true` for `FULL`; `BASIC`, unspecified or absent is the basic view.
fn parse_view(view: Option<&str>) -> Result<bool, ApiError> {
    match view {
        None | Some("BASIC" | "VIEW_UNSPECIFIED") => Ok(false),
        Some("FULL") => Ok(true),
        Some(other) => Err(ApiError::invalid(&format!("invalid view `{other}`; expected BASIC or FULL"))),
    }
}

/// The documented default (200 `BASIC`, 50 `FULL`) or the requested size, capped by the
/// documented maximum (1000 `BASIC`, 500 `FULL`) and then by the emulator's own.
fn page_size(requested: Option<&str>, full: bool, max_page_size: usize) -> Result<usize, ApiError> {
    let (default, maximum) = if full { (50, 500) } else { (200, 1000) };
    let requested = match requested {
        None => 0,
        Some(text) => {
            text.parse::<i64>().map_err(|_| ApiError::invalid(&format!("pageSize `{text}` is not a number")))?
        }
    };
    if requested < 0 {
        return Err(ApiError::invalid("pageSize must not be negative"));
    }
    let size = if requested == 0 { default } else { usize::try_from(requested).unwrap_or(maximum) };
    Ok(size.min(maximum).min(max_page_size).max(1))
}

/// Up to `size` items, and the key of the last one when more items follow.
fn take_page<'a, T>(items: impl Iterator<Item = (&'a str, T)>, size: usize) -> (Vec<T>, Option<&'a str>) {
    let mut page = Vec::new();
    let mut last = None;
    for (key, item) in items {
        if page.len() == size {
            return (page, last);
        }
        page.push(item);
        last = Some(key);
    }
    (page, None)
}

/// Where a listing resumes: after the key in the token, or from the start without one.
fn page_start(token: Option<&str>, scope: &str) -> Result<Option<String>, ApiError> {
    match token {
        None | Some("") => Ok(None),
        Some(token) => decode_page_token(token, scope)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("invalid page token; it must come from the same listing")),
    }
}

/// A page token: the listing it belongs to and the last key returned, hex-encoded. Resuming
/// after a key (not at an offset) means items added or removed between pages cause neither
/// duplicates nor gaps among the items that were there all along.
fn encode_page_token(scope: &str, last_key: &str) -> String {
    format!("{scope}\n{last_key}").bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_page_token(token: &str, scope: &str) -> Option<String> {
    // An odd length fails on the last pair.
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|index| u8::from_str_radix(token.get(index..index + 2)?, 16).ok()).collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (token_scope, last_key) = text.split_once('\n')?;
    (token_scope == scope).then(|| last_key.to_owned())
}

/// Fourteen hex digits that do not follow creation order: `counter` times an odd constant,
/// modulo 2^56, which is a bijection, so ids never collide.
fn opaque_id(counter: u64, multiplier: u64) -> String {
    format!("{:014x}", counter.wrapping_mul(multiplier) & ((1 << 56) - 1))
}

/// `2026-11-26T04:55:17.123456Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let date = Date::from_days_since_epoch((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{date}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::FaultPlan;

    fn context<'a>(query: &'a [(String, String)], body: &'a [u8], faults: &'a FaultPlan) -> Context<'a> {
        Context { query, body, faults }
    }

    fn members_page(directory: &Directory, id: &str, token: Option<&str>) -> (Vec<String>, Option<String>) {
        let mut query = vec![("pageSize".to_owned(), "2".to_owned())];
        if let Some(token) = token {
            query.push(("pageToken".to_owned(), token.to_owned()));
        }
        let faults = FaultPlan::default();
        let page = directory.list_memberships(id, &context(&query, b"", &faults), 200).expect("a page");
        let emails = page["memberships"]
            .as_array()
            .map(|list| list.iter().map(|m| m["preferredMemberKey"]["id"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        (emails, page["nextPageToken"].as_str().map(str::to_owned))
    }

    #[test]
    fn page_tokens_round_trip_and_belong_to_one_listing() {
        let token = encode_page_token("memberships|0abc", "alice@example.org");
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
        assert_eq!(decode_page_token(&token, "memberships|0abc").as_deref(), Some("alice@example.org"));
        assert_eq!(decode_page_token(&token, "memberships|0def"), None);
        assert_eq!(decode_page_token("zz", "memberships|0abc"), None);
        assert_eq!(decode_page_token("abc", "memberships|0abc"), None);
        assert!(page_start(Some("not a token"), "groups|customers/C1").is_err());
        assert_eq!(page_start(Some(""), "groups|customers/C1").unwrap(), None);
    }

    #[test]
    fn paging_resumes_after_the_last_key_when_members_arrive_between_pages() {
        let mut directory = Directory::new("C1");
        directory.insert_seed(SeedGroup {
            email: "g@example.org".to_owned(),
            members: vec!["a@x.org".to_owned(), "c@x.org".to_owned(), "e@x.org".to_owned()],
            ..SeedGroup::default()
        });
        let id = directory.groups["g@example.org"].id.clone();
        let (first, token) = members_page(&directory, &id, None);
        assert_eq!(first, ["a@x.org", "c@x.org"]);
        directory.add_member("g@example.org", "b@x.org", NewMember::seeded());
        directory.add_member("g@example.org", "d@x.org", NewMember::seeded());
        let (second, token) = members_page(&directory, &id, token.as_deref());
        assert_eq!(second, ["d@x.org", "e@x.org"]);
        assert_eq!(token, None, "the last page has no token");
    }

    #[test]
    fn page_sizes_follow_the_documented_defaults_and_caps() {
        assert_eq!(page_size(None, false, 5000).unwrap(), 200);
        assert_eq!(page_size(None, true, 5000).unwrap(), 50);
        assert_eq!(page_size(Some("0"), true, 5000).unwrap(), 50);
        assert_eq!(page_size(Some("5000"), false, 5000).unwrap(), 1000);
        assert_eq!(page_size(Some("5000"), true, 5000).unwrap(), 500);
        assert_eq!(page_size(Some("500"), true, 200).unwrap(), 200);
        assert_eq!(page_size(Some("3"), false, 200).unwrap(), 3);
        assert!(page_size(Some("-1"), false, 200).is_err());
        assert!(page_size(Some("many"), false, 200).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_000_000_000)), "2001-09-09T01:46:40.000000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000Z");
    }
}
