//! Canonical records as the caller gets them, and their ids.
//!
//! A record's `id` is `<tag><remote id>`: the remote id in URL-safe base64 after a 12-character
//! tag, the start of a SHA-256 over the connection, the model and the remote id. The same
//! record has the same id on every call and walk; the same remote id on two connections (or in
//! two models) has two ids; and `GET /unified/.../{id}` reads the remote id back out of the id
//! itself, with no table to keep, refusing an id whose tag does not match.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_adapters::unified::Mapped;
use gatehouse_models::{Model, Record};
use sha2::{Digest, Sha256};

/// Characters of the tag: 72 bits of the digest.
const TAG_CHARS: usize = 12;

fn tag(connection: &str, model: Model, remote_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gatehouse-record-id:v1\0")
        .chain_update(connection.as_bytes())
        .chain_update(b"\0")
        .chain_update(model.label().as_bytes())
        .chain_update(b"\0")
        .chain_update(remote_id.as_bytes())
        .finalize();
    let mut tag = URL_SAFE_NO_PAD.encode(&digest[..9]);
    tag.truncate(TAG_CHARS);
    tag
}

/// The id of `remote_id` of `model` on `connection`.
pub(crate) fn record_id(connection: &str, model: Model, remote_id: &str) -> String {
    let mut id = tag(connection, model, remote_id);
    id.push_str(&URL_SAFE_NO_PAD.encode(remote_id.as_bytes()));
    id
}

/// The remote id inside `id`, when `id` is one this connection's `model` handed out.
pub(crate) fn remote_id_of(connection: &str, model: Model, id: &str) -> Option<String> {
    let (given_tag, encoded) = (id.get(..TAG_CHARS)?, id.get(TAG_CHARS..)?);
    let remote = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    (!remote.is_empty() && tag(connection, model, &remote) == given_tag).then_some(remote)
}

/// The caller's record of one mapped provider record.
pub(crate) fn record(
    connection: &str,
    provider: &str,
    model: Model,
    mapped: Mapped,
    include_raw: bool,
) -> Record {
    Record {
        id: record_id(connection, model, &mapped.remote_id),
        remote_id: mapped.remote_id,
        connection: connection.to_owned(),
        provider: provider.to_owned(),
        remote_created_at: mapped.remote_created_at,
        remote_modified_at: mapped.remote_modified_at,
        remote_was_deleted: mapped.remote_was_deleted,
        fields: mapped.fields,
        remote_data: include_raw.then_some(mapped.raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_url_safe_and_carry_their_remote_id() {
        let id = record_id("crm", Model::Account, "001000000000001AAA");
        assert_eq!(id, record_id("crm", Model::Account, "001000000000001AAA"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            remote_id_of("crm", Model::Account, &id).as_deref(),
            Some("001000000000001AAA")
        );
        let odd = "a/b?c=d é";
        let id = record_id("crm", Model::Job, odd);
        assert_eq!(remote_id_of("crm", Model::Job, &id).as_deref(), Some(odd));
    }

    #[test]
    fn two_connections_or_models_never_share_an_id_nor_accept_each_others() {
        let a = record_id("crm-a", Model::Account, "42");
        let b = record_id("crm-b", Model::Account, "42");
        let c = record_id("crm-a", Model::Contact, "42");
        assert!(a != b && a != c && b != c);
        assert_eq!(remote_id_of("crm-b", Model::Account, &a), None);
        assert_eq!(remote_id_of("crm-a", Model::Contact, &a), None);
        // A made-up id, or one edited to name another remote record, is not accepted.
        let forged = format!("{}{}", &a[..TAG_CHARS], URL_SAFE_NO_PAD.encode("43"));
        for bad in ["", "short", &forged, &format!("{a}!")] {
            assert_eq!(remote_id_of("crm-a", Model::Account, bad), None, "{bad}");
        }
    }
}
