//! Says once when a grant of the policy has expired: from that day on it no longer
//! exempts anything, and the objects it covered are judged (and may be denied) again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use tracing::warn;

use crate::policy::{Grant, Policy};
use crate::server::http::app::App;

/// How often the date is looked at: expiry is by day, a minute late is on time.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Checks the policy in force now and every minute until the server is gone.
pub fn spawn(app: &Arc<App>) {
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut logged = HashSet::new();
        let mut tick = tokio::time::interval(CHECK_EVERY);
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else { return };
            let policy = app.policy.load();
            for (index, grant) in newly_expired(&policy, crate::clock::today_utc(), &mut logged) {
                let rules: Vec<&str> = grant.rules.iter().map(|rule| rule.as_str()).collect();
                warn!(
                    grant = index,
                    namespace = %grant.namespace,
                    rules = %rules.join(","),
                    reason = %grant.reason,
                    expired_after = %grant.expires.map(|d| d.to_string()).unwrap_or_default(),
                    "a grant of the policy has expired: its objects are judged in full again"
                );
            }
        }
    });
}

/// The grants expired by `today` that `logged` does not hold yet (by content, so a reload
/// of the same policy does not say it again); adds them to it.
fn newly_expired<'p>(
    policy: &'p Policy,
    today: Date,
    logged: &mut HashSet<Grant>,
) -> Vec<(usize, &'p Grant)> {
    let grants = policy.exemptions.grants.iter().enumerate();
    grants
        .filter(|(_, grant)| grant.expired_on(Some(today)) && logged.insert((*grant).clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_policy;

    #[test]
    fn each_expired_grant_is_said_once() {
        let policy = parse_policy(
            "exemptions:\n  grants:\n  - {namespace: a, rules: [cpu-limit], reason: r, expires: 2027-03-31}\n  - {namespace: b, rules: [cpu-limit], reason: r}\n",
            "test",
        )
        .unwrap();
        let mut logged = HashSet::new();
        let day = |text: &str| text.parse::<Date>().unwrap();
        assert!(newly_expired(&policy, day("2027-03-31"), &mut logged).is_empty());
        let expired = newly_expired(&policy, day("2027-04-01"), &mut logged);
        assert_eq!(expired.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0]);
        assert!(newly_expired(&policy, day("2027-04-02"), &mut logged).is_empty());
        let reloaded = policy.clone();
        assert!(newly_expired(&reloaded, day("2027-04-02"), &mut logged).is_empty());
    }
}
