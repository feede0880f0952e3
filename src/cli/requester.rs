//! `--as USER` and `--at DATE`: the requester and the date a judgement is made for, which
//! the documents themselves cannot say (trusted controllers, annotation requesters, grant
//! expiry).

use clap::Args;
use jiff::civil::Date;

use crate::config::utc_date;
use crate::policy::RequestContext;

#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    /// Judge as if USER applied the documents (`request.userInfo.username`): decides the
    /// controller-owned cap (controllerOwnedPods.trustedRequesters) and who may use the
    /// exemption annotation. Without it, no user: owner references are not trusted.
    #[arg(long = "as", value_name = "USER")]
    pub requester: Option<String>,
    /// The date (UTC, YYYY-MM-DD) grants expire by; today when absent. Fix it in CI for
    /// reproducible results.
    #[arg(long, value_name = "DATE", value_parser = utc_date)]
    pub at: Option<Date>,
}

impl RequestArgs {
    pub fn today(&self) -> Date {
        self.at.unwrap_or_else(crate::clock::today_utc)
    }

    pub fn context(&self) -> RequestContext<'_> {
        RequestContext {
            requester: self.requester.as_deref(),
            today: Some(self.today()),
        }
    }
}
