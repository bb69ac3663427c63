//! Config pieces the end-to-end tests share. Each returns TOML to paste into a test's config,
//! so a test file spells out only what is its own (its limits, its grants, its store) and the
//! rest reads as one call.

use gatehouse_sim::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

/// `[server]` on ephemeral ports (data plane and admin), then `extra` lines of that table.
pub fn server(extra: &str) -> String {
    format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{extra}\n")
}

/// A connection `id` to the loopback test upstream at `base_url`: provider `custom` with the
/// `testapi` profile. `extra` lines go into the connection's table (credentials, say).
pub fn testapi_connection(id: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[connections]]\nid = \"{id}\"\nprovider = \"custom\"\nbase_url = \"{base_url}\"\n{extra}\n[connections.profile]\nname = \"testapi\"\n"
    )
}

/// A connection `id` of `provider` at `base_url` that refreshes its OAuth tokens at
/// `token_url` with the simulators' demo client, starting from the refresh token `seed`.
/// `extra` lines go into its credentials table (lifetimes and margins).
pub fn oauth_refresh_connection(
    id: &str,
    provider: &str,
    base_url: &str,
    token_url: &str,
    seed: &str,
    extra: &str,
) -> String {
    format!(
        r#"[[connections]]
id = "{id}"
provider = "{provider}"
base_url = "{base_url}"
[connections.credentials]
type = "oauth_refresh_token"
token_url = "{token_url}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_CLIENT_SECRET}"
refresh_token = "{seed}"
{extra}
"#
    )
}

/// A caller `id` known by its bearer `token`, with one grant: `methods` on `paths` of
/// `connections`. Further grants follow as [`grant`]s.
pub fn caller(
    id: &str,
    token: &str,
    connections: &[&str],
    methods: &[&str],
    paths: &[&str],
) -> String {
    format!(
        "[[callers]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n{}",
        crate::token_hash(token),
        grant(connections, methods, paths, "")
    )
}

/// One more grant for the caller before it: `methods` on `paths` of `connections`, and `extra`
/// lines of the grant's table (`max_body_bytes`, say).
pub fn grant(connections: &[&str], methods: &[&str], paths: &[&str], extra: &str) -> String {
    format!(
        "[[callers.grants]]\nconnections = {}\nmethods = {}\npaths = {}\n{extra}\n",
        toml_list(connections),
        toml_list(methods),
        toml_list(paths)
    )
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_make_one_valid_document() {
        let text = format!(
            "{}{}{}{}{}",
            server("request_timeout = \"5s\""),
            testapi_connection(
                "up",
                "http://127.0.0.1:1/base",
                "credentials = { type = \"bearer\", token = \"t\" }"
            ),
            oauth_refresh_connection(
                "sf",
                "salesforce",
                "http://127.0.0.1:2",
                "http://127.0.0.1:2/token",
                "seed",
                "token_lifetime_secs = 60"
            ),
            caller("svc", "tok", &["up", "sf"], &["GET"], &["/a/*", "/b/**"]),
            grant(&["up"], &["POST"], &["/c"], "max_body_bytes = 10"),
        );
        let doc: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(doc["server"]["request_timeout"].as_str(), Some("5s"));
        let connections = doc["connections"].as_array().unwrap();
        assert_eq!(connections[0]["profile"]["name"].as_str(), Some("testapi"));
        assert_eq!(connections[0]["credentials"]["token"].as_str(), Some("t"));
        assert_eq!(
            connections[1]["credentials"]["token_lifetime_secs"].as_integer(),
            Some(60)
        );
        let grants = doc["callers"][0]["grants"].as_array().unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0]["paths"].as_array().unwrap().len(), 2);
        assert_eq!(grants[1]["max_body_bytes"].as_integer(), Some(10));
        assert_eq!(
            doc["callers"][0]["token_sha256"].as_str(),
            Some(crate::token_hash("tok").as_str())
        );
    }
}
