//! The `Secret` type lives in the store crate, which seals secrets; the proxy's config and
//! credential code use it from here.

pub use gatehouse_store::Secret;
