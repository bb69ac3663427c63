//! Ashby (RPC-style API, `POST /<category>.<method>`): HTTP Basic with the API key as the
//! user name and a blank password, so a static `basic` credential; no OAuth. Its errors arrive
//! as HTTP 200 with `success:false` (classified when error classification joins the trait).

use crate::provider::Provider;

pub const NAME: &str = "ashby";

#[derive(Debug, Clone, Copy, Default)]
pub struct Ashby;

impl Provider for Ashby {
    fn name(&self) -> &str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rest_defaults() {
        assert_eq!(Ashby.name(), "ashby");
        assert!(Ashby.replay_on_401());
        assert!(Ashby.soql().is_none());
        assert!(Ashby.account_lookup_path("t").is_none());
    }
}
