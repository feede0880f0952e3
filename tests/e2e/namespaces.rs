//! Test namespaces: labelled for the release whose webhooks should see them, with
//! alice bound to `edit` in each, deleted when dropped.

use std::time::Duration;

use super::cluster_env::{cluster, eventually};

/// The label a release's webhooks select namespaces by, so that releases of
/// tests running at the same time never judge each other's objects.
pub const SCOPE_LABEL: &str = "deployguard-e2e";

pub struct Namespace {
    pub name: String,
    /// Wait until it is gone when dropped (a name the next test creates again).
    await_deletion: bool,
}

impl Namespace {
    /// A namespace seen by the release `scope` (None: by no scoped release).
    pub fn create(name: &str, scope: Option<&str>) -> Namespace {
        let admin = cluster().admin();
        let labels = scope.map_or(String::new(), |s| {
            format!("\n  labels:\n    {SCOPE_LABEL}: {s}")
        });
        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}{labels}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: alice-edit\n  namespace: {name}\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: edit\n\
             subjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: alice\n"
        );
        let outcome = admin.apply(&manifest);
        assert!(outcome.success, "namespace {name}: {}", outcome.stderr);
        // The ServiceAccount admission plugin refuses Pods until `default` exists.
        eventually(
            &format!("ServiceAccount {name}/default"),
            Duration::from_secs(60),
            || {
                admin
                    .run(&["get", "serviceaccount", "default", "-n", name], None)
                    .success
                    .then_some(())
            },
        );
        Namespace {
            name: name.to_string(),
            await_deletion: false,
        }
    }

    pub fn deleted_on_drop_and_awaited(mut self) -> Namespace {
        self.await_deletion = true;
        self
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let wait = if self.await_deletion {
            "--wait=true"
        } else {
            "--wait=false"
        };
        let _ = cluster().admin().run(
            &["delete", "namespace", &self.name, wait, "--timeout=120s"],
            None,
        );
    }
}
