//! The labels of the request metrics: a closed set of values built from config ids and stable
//! names only (never paths, query strings or header values), so cardinality stays bounded and
//! no secret can reach a scrape. Shared by the request statistics and the dashboard.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

#[derive(Clone, Debug, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestLabels {
    pub connection: Label,
    pub provider: Label,
    pub caller: Label,
    pub method: Method,
    pub status_class: StatusClass,
    /// Error category, or `none` for a request that reached the provider and came back.
    pub category: &'static str,
}

/// A request's labels by reference: what the request path looks series up with, so that a
/// label set is only copied (its shared strings' counts touched) when a series is new.
#[derive(Clone, Copy, Debug)]
pub struct RequestLabelRefs<'a> {
    pub connection: &'a str,
    pub provider: &'a str,
    pub caller: &'a str,
    pub method: Method,
    pub status_class: StatusClass,
    pub category: &'static str,
}

type LabelKeyTuple<'a> = (&'a str, &'a str, &'a str, Method, StatusClass, &'static str);

/// What hashing and equality of a label set are defined on, owned or borrowed alike (the
/// `Borrow` contract: both hash and compare the same way).
pub trait LabelKey {
    fn key(&self) -> LabelKeyTuple<'_>;
}

impl LabelKey for RequestLabels {
    fn key(&self) -> LabelKeyTuple<'_> {
        (
            &self.connection.0,
            &self.provider.0,
            &self.caller.0,
            self.method,
            self.status_class,
            self.category,
        )
    }
}

impl LabelKey for RequestLabelRefs<'_> {
    fn key(&self) -> LabelKeyTuple<'_> {
        (
            self.connection,
            self.provider,
            self.caller,
            self.method,
            self.status_class,
            self.category,
        )
    }
}

impl std::hash::Hash for dyn LabelKey + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for dyn LabelKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn LabelKey + '_ {}

impl std::hash::Hash for RequestLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for RequestLabels {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for RequestLabels {}

impl<'a> std::borrow::Borrow<dyn LabelKey + 'a> for RequestLabels {
    fn borrow(&self) -> &(dyn LabelKey + 'a) {
        self
    }
}

impl RequestLabels {
    #[cfg(test)]
    pub fn as_refs(&self) -> RequestLabelRefs<'_> {
        RequestLabelRefs {
            connection: &self.connection.0,
            provider: &self.provider.0,
            caller: &self.caller.0,
            method: self.method,
            status_class: self.status_class,
            category: self.category,
        }
    }
}

impl RequestLabelRefs<'_> {
    pub fn owned(self) -> RequestLabels {
        RequestLabels {
            connection: Label::new(self.connection),
            provider: Label::new(self.provider),
            caller: Label::new(self.caller),
            method: self.method,
            status_class: self.status_class,
            category: self.category,
        }
    }
}

/// A label value shared by reference count: building a request's label set copies no string.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(pub std::sync::Arc<str>);

impl Label {
    pub fn new(text: &str) -> Self {
        Label(std::sync::Arc::from(text))
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl EncodeLabelValue for Label {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(&self.0)
    }
}

/// Methods as a closed set so a caller cannot create label values at will.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
    OTHER,
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Method::GET,
            http::Method::HEAD => Method::HEAD,
            http::Method::POST => Method::POST,
            http::Method::PUT => Method::PUT,
            http::Method::PATCH => Method::PATCH,
            http::Method::DELETE => Method::DELETE,
            http::Method::OPTIONS => Method::OPTIONS,
            _ => Method::OTHER,
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusClass {
    C1xx,
    C2xx,
    C3xx,
    C4xx,
    C5xx,
}

impl StatusClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::C1xx => "1xx",
            StatusClass::C2xx => "2xx",
            StatusClass::C3xx => "3xx",
            StatusClass::C4xx => "4xx",
            StatusClass::C5xx => "5xx",
        }
    }
}

impl EncodeLabelValue for StatusClass {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.as_str())
    }
}

impl From<http::StatusCode> for StatusClass {
    fn from(s: http::StatusCode) -> Self {
        match s.as_u16() {
            100..=199 => StatusClass::C1xx,
            200..=299 => StatusClass::C2xx,
            300..=399 => StatusClass::C3xx,
            400..=499 => StatusClass::C4xx,
            _ => StatusClass::C5xx,
        }
    }
}
