//! The ids `[imports]` may give, per resource type: what `pulumi import` accepts for it.
//!
//! Owns the id shapes of the Pulumi providers as data (`ID_SHAPES`): a GCS bucket is its name,
//! a service account `projects/<p>/serviceAccounts/<email>`, an IAM member `<resource> <role>
//! <member>`, an azure-native resource its full ARM id. A placeholder named after a property
//! must equal that property when the program sets it literally: Pulumi adopts a resource only
//! as the program declares it. Pure.

use crate::definitions::is_valid_email;

use super::program::{Resource, Value};

const ARM_GROUP: &str = "/subscriptions/<subscription>/resourceGroups/<resourceGroupName>/providers";

/// Type token → the shape of its import id. `<x>` is one non-empty part (compared with the
/// property `x` when the program sets it literally), `<*x>` one or more `/`-separated parts
/// starting with `/subscriptions/` (an ARM scope), `<email>` an email address; parts of an IAM
/// member id are separated by spaces.
fn shape(type_token: &str) -> Option<String> {
    let storage_account = format!("{ARM_GROUP}/Microsoft.Storage/storageAccounts/<accountName>");
    let shape = match type_token {
        "gcp:storage:Bucket" => "<name>".to_owned(),
        "gcp:storage:BucketIAMMember" => "b/<bucket> <role> <member>".to_owned(),
        "gcp:storage:BucketObject" => "<bucket>/<name>".to_owned(),
        "gcp:serviceaccount:Account" => "projects/<project>/serviceAccounts/<email>".to_owned(),
        "gcp:serviceaccount:IAMMember" => "projects/<project>/serviceAccounts/<email> <role> <member>".to_owned(),
        "gcp:secretmanager:Secret" => "projects/<project>/secrets/<secretId>".to_owned(),
        "gcp:secretmanager:SecretVersion" => "projects/<project>/secrets/<secret>/versions/<version>".to_owned(),
        "gcp:secretmanager:SecretIamMember" => "projects/<project>/secrets/<secretId> <role> <member>".to_owned(),
        "gcp:artifactregistry:Repository" => {
            "projects/<project>/locations/<location>/repositories/<repositoryId>".to_owned()
        }
        "gcp:artifactregistry:RepositoryIamMember" => {
            "projects/<project>/locations/<location>/repositories/<repository> <role> <member>".to_owned()
        }
        "gcp:billing:Budget" => "billingAccounts/<billingAccount>/budgets/<budget>".to_owned(),
        "gcp:monitoring:NotificationChannel" => "projects/<project>/notificationChannels/<channel>".to_owned(),
        "azure-native:resources:ResourceGroup" => {
            "/subscriptions/<subscription>/resourceGroups/<resourceGroupName>".to_owned()
        }
        "azure-native:storage:StorageAccount" => storage_account,
        "azure-native:storage:BlobContainer" => {
            format!("{storage_account}/blobServices/default/containers/<containerName>")
        }
        "azure-native:storage:BlobServiceProperties" => format!("{storage_account}/blobServices/default"),
        "azure-native:storage:ManagementPolicy" => format!("{storage_account}/managementPolicies/default"),
        "azure-native:managedidentity:UserAssignedIdentity" => {
            format!("{ARM_GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/<resourceName>")
        }
        "azure-native:keyvault:Vault" => format!("{ARM_GROUP}/Microsoft.KeyVault/vaults/<vaultName>"),
        "azure-native:keyvault:Secret" => {
            format!("{ARM_GROUP}/Microsoft.KeyVault/vaults/<vaultName>/secrets/<secretName>")
        }
        "azure-native:containerregistry:Registry" => {
            format!("{ARM_GROUP}/Microsoft.ContainerRegistry/registries/<registryName>")
        }
        "azure-native:authorization:RoleAssignment" => {
            "<*scope>/providers/Microsoft.Authorization/roleAssignments/<roleAssignmentName>".to_owned()
        }
        "azure-native:consumption:Budget" => "<*scope>/providers/Microsoft.Consumption/budgets/<budgetName>".to_owned(),
        _ => return None,
    };
    Some(shape)
}

/// Why `id` cannot adopt `resource`, or `None` if it can.
pub fn id_problem(resource: &Resource, id: &str) -> Option<String> {
    let Some(shape) = shape(&resource.type_token) else {
        return Some("but this kind of resource cannot be imported".to_owned());
    };
    let expected = || format!("but its id has the form `{}`", shape.replace("<*", "<"));
    let shape_fields: Vec<&str> = shape.split(' ').collect();
    let id_fields: Vec<&str> = id.split(' ').collect();
    if shape_fields.len() != id_fields.len() {
        return Some(expected());
    }
    let mut captures = Vec::new();
    for (shape_field, id_field) in shape_fields.iter().zip(&id_fields) {
        // In an IAM member id a whole field may hold `/` (the role `roles/x`).
        let matched = match placeholder(shape_field) {
            Some(name) if shape_fields.len() > 1 && !id_field.is_empty() => {
                captures.push((name, (*id_field).to_owned()));
                true
            }
            _ => {
                let shape_parts: Vec<&str> = shape_field.split('/').collect();
                let id_parts: Vec<&str> = id_field.split('/').collect();
                parts_match(&shape_parts, &id_parts, &mut captures)
            }
        };
        if !matched {
            return Some(expected());
        }
    }
    for (name, value) in captures {
        if name == "email" && !is_valid_email(&value) {
            return Some(format!("but `{value}` is not an email address; {}", expected().trim_start_matches("but ")));
        }
        if let Some(Value::String(declared)) = resource.properties.get(name) {
            if *declared != value {
                return Some(format!(
                    "but its {name} here is `{declared}`, not `{value}`; Pulumi adopts a resource only as the program declares it"
                ));
            }
        }
    }
    None
}

/// `<name>` → `name`.
fn placeholder(part: &str) -> Option<&str> {
    part.strip_prefix('<')?.strip_suffix('>').filter(|name| !name.starts_with('*'))
}

/// `<*name>` → `name`.
fn scope_placeholder(part: &str) -> Option<&str> {
    part.strip_prefix("<*")?.strip_suffix('>')
}

fn parts_match<'s>(shape: &[&'s str], id: &[&str], captures: &mut Vec<(&'s str, String)>) -> bool {
    let Some((first, rest)) = shape.split_first() else {
        return id.is_empty();
    };
    if let Some(name) = scope_placeholder(first) {
        for end in 2..=id.len() {
            let scope = id[..end].join("/");
            if scope.to_ascii_lowercase().starts_with("/subscriptions/")
                && id[..end].iter().skip(1).all(|p| !p.is_empty())
                && parts_match(rest, &id[end..], captures)
            {
                captures.push((name, scope));
                return true;
            }
        }
        return false;
    }
    let Some((part, id_rest)) = id.split_first() else {
        return false;
    };
    match placeholder(first) {
        Some(name) if !part.is_empty() => {
            captures.push((name, (*part).to_owned()));
            parts_match(rest, id_rest, captures)
        }
        Some(_) => false,
        None => part.eq_ignore_ascii_case(first) && parts_match(rest, id_rest, captures),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::program::{Origin, Owner};

    fn resource(type_token: &str, properties: Value) -> Resource {
        let origin = Origin { owner: Owner::Dataset("d".into()), cloud: "any".into(), component: "storage".into() };
        Resource::new(type_token, origin, properties)
    }

    #[test]
    fn gcp_ids() {
        let bucket = resource("gcp:storage:Bucket", Value::map([("name", Value::str("egi-d-main"))]));
        assert_eq!(id_problem(&bucket, "egi-d-main"), None);
        assert!(id_problem(&bucket, "d-main").unwrap().contains("its name here is `egi-d-main`"));
        assert!(id_problem(&bucket, "projects/x/buckets/y").unwrap().contains("has the form `<name>`"));
        let account = resource("gcp:serviceaccount:Account", Value::map([("project", Value::str("p1"))]));
        assert_eq!(id_problem(&account, "projects/p1/serviceAccounts/a@p1.iam.gserviceaccount.com"), None);
        assert!(id_problem(&account, "hail-test").is_some());
        assert!(id_problem(&account, "projects/p1/serviceAccounts/hail").unwrap().contains("not an email"));
        let member = resource(
            "gcp:storage:BucketIAMMember",
            Value::map([("role", Value::str("roles/storage.objectViewer")), ("member", Value::str("group:g@x.org"))]),
        );
        assert_eq!(id_problem(&member, "b/egi-d-main roles/storage.objectViewer group:g@x.org"), None);
        assert!(id_problem(&member, "egi-d-main roles/storage.objectViewer group:g@x.org").is_some());
        assert!(id_problem(&member, "b/egi-d-main roles/storage.objectAdmin group:g@x.org").unwrap().contains("role"));
        let key = resource("gcp:serviceaccount:Key", Value::map([]));
        assert!(id_problem(&key, "anything").unwrap().contains("cannot be imported"));
    }

    #[test]
    fn azure_ids_are_full_arm_ids() {
        let container =
            resource("azure-native:storage:BlobContainer", Value::map([("containerName", Value::str("main"))]));
        let arm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/main";
        assert_eq!(id_problem(&container, arm), None);
        assert!(id_problem(&container, "main").unwrap().contains("/subscriptions/<subscription>/resourceGroups/"));
        assert!(id_problem(&container, &arm.replace("/main", "/other")).is_some());
        let assignment = resource("azure-native:authorization:RoleAssignment", Value::map([]));
        assert_eq!(
            id_problem(&assignment, &format!("{arm}/providers/Microsoft.Authorization/roleAssignments/g")),
            None
        );
        assert!(id_problem(&assignment, "/providers/Microsoft.Authorization/roleAssignments/g").is_some());
    }
}
