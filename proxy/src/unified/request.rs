//! What a unified API request asks: which model (and record), on which connection, with which
//! walk parameters. Everything here is read from the request line alone, and every problem is
//! the caller's typed error.

use crate::error::{Category, GatewayError};
use gatehouse_models::Model;
use std::time::SystemTime;

/// The `page_size` used when the caller names none (clamped to the provider's maximum).
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 100;

/// What a `/unified/...` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource<'a> {
    /// `GET /unified/openapi.json`.
    OpenApi,
    /// `GET /unified/{family}/{collection}`.
    List(Model),
    /// `GET /unified/{family}/{collection}/{id}`.
    Record(Model, &'a str),
}

/// Reads the path after `/unified` (`/crm/accounts`, `/ats/jobs/<id>`, `/openapi.json`).
pub(crate) fn resource(rest: &str) -> Result<Resource<'_>, GatewayError> {
    if rest == "/openapi.json" {
        return Ok(Resource::OpenApi);
    }
    let mut parts = rest.strip_prefix('/').unwrap_or(rest).split('/');
    let (Some(family), Some(collection)) = (parts.next(), parts.next()) else {
        return Err(unknown_path());
    };
    let model = Model::from_path(family, collection).ok_or_else(unknown_path)?;
    match (parts.next(), parts.next()) {
        (None, _) | (Some(""), None) => Ok(Resource::List(model)),
        (Some(id), None) if !id.is_empty() => Ok(Resource::Record(model, id)),
        _ => Err(unknown_path()),
    }
}

fn unknown_path() -> GatewayError {
    GatewayError::new(
        Category::NotFound,
        "unknown_unified_path",
        "the unified API serves /unified/crm/{accounts,contacts,opportunities} and /unified/ats/{candidates,applications,jobs}, each with /{id}, and /unified/openapi.json",
    )
}

/// The query parameters of a unified request, as given (nothing defaulted yet: a cursor's own
/// parameters must be told apart from ones the caller repeats).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Params {
    pub connection: Option<String>,
    pub cursor: Option<String>,
    pub page_size: Option<u32>,
    /// As given, and as read.
    pub modified_since: Option<(String, SystemTime)>,
    pub include_raw: Option<bool>,
}

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Params, GatewayError> {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot_taken = match &*name {
                "connection" => params.connection.replace(value.into_owned()).is_some(),
                "cursor" => params.cursor.replace(value.into_owned()).is_some(),
                "page_size" => params.page_size.replace(page_size(&value)?).is_some(),
                "modified_since" => {
                    let at = rfc3339(&value)?;
                    params
                        .modified_since
                        .replace((value.into_owned(), at))
                        .is_some()
                }
                "include_raw" => params.include_raw.replace(boolean(&value)?).is_some(),
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(GatewayError::bad_request(
                        "unknown_parameter",
                        format!("unknown query parameter {shown:?}: the unified API takes connection, cursor, page_size, modified_since and include_raw"),
                    ));
                }
            };
            if slot_taken {
                return Err(GatewayError::bad_request(
                    "repeated_parameter",
                    format!("send the {name} parameter once"),
                ));
            }
        }
        Ok(params)
    }

    /// The connection id, which every data request must name.
    pub fn connection(&self) -> Result<&str, GatewayError> {
        self.connection
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                GatewayError::bad_request(
                    "missing_connection",
                    "name the connection: ?connection=<connection id>",
                )
            })
    }
}

fn page_size(value: &str) -> Result<u32, GatewayError> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(GatewayError::bad_request(
            "invalid_page_size",
            "page_size must be a whole number of at least 1 (it is capped at the provider's largest page)",
        )),
    }
}

fn boolean(value: &str) -> Result<bool, GatewayError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(GatewayError::bad_request(
            "invalid_include_raw",
            "include_raw must be true or false",
        )),
    }
}

/// An RFC 3339 time (`2025-06-01T00:00:00Z`, `2025-06-01T02:00:00+02:00`).
pub(crate) fn rfc3339(value: &str) -> Result<SystemTime, GatewayError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| {
            GatewayError::bad_request(
                "invalid_modified_since",
                "modified_since must be an RFC 3339 time, such as 2025-06-01T00:00:00Z",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_rfc3339(at: SystemTime) -> Option<String> {
        time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    }

    #[test]
    fn paths_name_a_model_a_record_or_the_document() {
        assert_eq!(
            resource("/crm/accounts").unwrap(),
            Resource::List(Model::Account)
        );
        assert_eq!(
            resource("/crm/accounts/").unwrap(),
            Resource::List(Model::Account)
        );
        assert_eq!(
            resource("/ats/jobs/abc").unwrap(),
            Resource::Record(Model::Job, "abc")
        );
        assert_eq!(resource("/openapi.json").unwrap(), Resource::OpenApi);
        for unknown in [
            "",
            "/",
            "/crm",
            "/crm/candidates",
            "/hr/accounts",
            "/crm/accounts/a/b",
            "/crm/accounts//",
        ] {
            let err = resource(unknown).unwrap_err();
            assert_eq!(
                (err.category, err.code),
                (Category::NotFound, "unknown_unified_path"),
                "{unknown}"
            );
        }
    }

    #[test]
    fn parameters_are_read_and_bad_ones_refused_with_their_code() {
        let p = Params::parse(Some(
            "connection=crm&page_size=50&modified_since=2025-06-01T02%3A00%3A00%2B02%3A00&include_raw=true&cursor=abc",
        ))
        .unwrap();
        assert_eq!(p.connection().unwrap(), "crm");
        assert_eq!(p.page_size, Some(50));
        assert_eq!(p.include_raw, Some(true));
        assert_eq!(p.cursor.as_deref(), Some("abc"));
        let (text, at) = p.modified_since.unwrap();
        assert_eq!(text, "2025-06-01T02:00:00+02:00");
        assert_eq!(format_rfc3339(at).unwrap(), "2025-06-01T00:00:00Z");
        for (query, code) in [
            ("page_size=0", "invalid_page_size"),
            ("page_size=ten", "invalid_page_size"),
            ("modified_since=yesterday", "invalid_modified_since"),
            ("modified_since=2025-06-01", "invalid_modified_since"),
            ("include_raw=yes", "invalid_include_raw"),
            ("limit=5", "unknown_parameter"),
            ("connection=a&connection=b", "repeated_parameter"),
        ] {
            let err = Params::parse(Some(query)).unwrap_err();
            assert_eq!((err.category, err.code), (Category::BadRequest, code));
        }
        let err = Params::parse(None).unwrap().connection().unwrap_err();
        assert_eq!(err.code, "missing_connection");
    }
}
