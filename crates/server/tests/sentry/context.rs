//! The caller on the scope: the user, the auth tags and the claim tags.

use sentry_core::protocol::User;
use vgirpc::sentry::SentryConfig;
use vgirpc::{AuthContext, Peer, TransportKind};

use super::*;

fn from(auth: AuthContext) -> Peer {
    Peer::anonymous(TransportKind::Http).with_auth(auth)
}

/// The event of a failed call by `peer` under `config`.
fn reported(config: SentryConfig, peer: &Peer) -> Event<'static> {
    event(Some(config), |server| {
        call(server, peer, "fail", vec![("value", text("x"))]);
    })
}

fn user(id: &str, fields: &[(&str, &str)]) -> User {
    let mut user = User {
        id: Some(id.to_owned()),
        ..User::default()
    };
    for (field, value) in fields {
        match *field {
            "username" => user.username = Some((*value).to_owned()),
            "email" => user.email = Some((*value).to_owned()),
            other => {
                user.other.insert(other.to_owned(), Value::from(*value));
            }
        }
    }
    user
}

#[test]
fn the_principal_alone_is_the_user_id() {
    let peer = from(AuthContext::authenticated("bearer", "bob"));
    let event = reported(SentryConfig::new(), &peer);
    assert_eq!(event.user, Some(user("bob", &[])));
    assert_eq!(tag(&event, "auth.domain"), Some("bearer"));
    assert_eq!(tag(&event, "auth.authenticated"), Some("true"));
}

#[test]
fn standard_oidc_claims_fill_the_user_by_default() {
    let sub = "4FySzCeE4zIYuvph49iD9tcJL0_zDWfpMqarUUPc1uA";
    let peer = from(
        AuthContext::authenticated("jwt", sub)
            .with_claim("sub", sub)
            .with_claim("preferred_username", "rusty")
            .with_claim("email", "rusty@example.com")
            .with_claim("name", "Rusty Conover"),
    );
    let event = reported(SentryConfig::new(), &peer);
    let expected = user(
        sub,
        &[
            ("username", "rusty"),
            ("email", "rusty@example.com"),
            ("name", "Rusty Conover"),
        ],
    );
    assert_eq!(event.user, Some(expected));
}

#[test]
fn a_user_claim_map_replaces_the_oidc_names() {
    let peer = from(
        AuthContext::authenticated("jwt", "auth0|abc")
            .with_claim("https://example.com/handle", "rusty")
            .with_claim("https://example.com/email", "rusty@example.com")
            .with_claim("preferred_username", "ignored")
            .with_claim("name", "ignored too"),
    );
    let config = SentryConfig::new().with_user_claim_map([
        ("username", "https://example.com/handle"),
        ("email", "https://example.com/email"),
    ]);
    let event = reported(config, &peer);
    let expected = user(
        "auth0|abc",
        &[("username", "rusty"), ("email", "rusty@example.com")],
    );
    assert_eq!(event.user, Some(expected));

    // One field at a time keeps the others' defaults.
    let config = SentryConfig::new().with_user_claim("username", "https://example.com/handle");
    let event = reported(config, &peer);
    let expected = user(
        "auth0|abc",
        &[("username", "rusty"), ("name", "ignored too")],
    );
    assert_eq!(event.user, Some(expected));
}

#[test]
fn empty_and_non_string_claims_leave_user_fields_empty() {
    let peer = from(
        AuthContext::authenticated("jwt", "bob")
            .with_claim("preferred_username", "")
            .with_claim("email", serde_json::json!(["a@b.com"]))
            .with_claim("name", 42),
    );
    let event = reported(SentryConfig::new(), &peer);
    assert_eq!(event.user, Some(user("bob", &[])));
}

#[test]
fn claim_tags_take_scalar_claims_only() {
    let peer = from(
        AuthContext::authenticated("jwt", "sub-123")
            .with_claim("tenant_id", "acme")
            .with_claim("level", 42)
            .with_claim("admin", true)
            .with_claim("roles", serde_json::json!(["admin", "user"])),
    );
    let config = SentryConfig::new()
        .with_claim_tag("tenant_id", "auth.tenant_id")
        .with_claim_tag("level", "auth.level")
        .with_claim_tag("admin", "auth.admin")
        .with_claim_tag("roles", "auth.roles")
        .with_claim_tag("nonexistent", "auth.nonexistent");
    let event = reported(config, &peer);
    assert_eq!(tag(&event, "auth.tenant_id"), Some("acme"));
    assert_eq!(tag(&event, "auth.level"), Some("42"));
    // As Python prints a boolean.
    assert_eq!(tag(&event, "auth.admin"), Some("True"));
    assert_eq!(tag(&event, "auth.roles"), None);
    assert_eq!(tag(&event, "auth.nonexistent"), None);
}

#[test]
fn without_request_context_there_is_no_context_user_or_auth_tag() {
    let peer = from(
        AuthContext::authenticated("jwt", "sub-123")
            .with_claim("preferred_username", "alice")
            .with_claim("tenant_id", "acme"),
    );
    let config = SentryConfig::new()
        .without_request_context()
        .with_claim_tag("tenant_id", "auth.tenant_id")
        .with_custom_tag("env", "test");
    let event = reported(config, &peer);
    assert!(!event.contexts.contains_key("rpc"));
    assert!(event.user.is_none());
    assert_eq!(tag(&event, "auth.domain"), None);
    assert_eq!(tag(&event, "auth.authenticated"), None);
    assert_eq!(tag(&event, "auth.tenant_id"), None);
    // What is not the caller's stays.
    assert_eq!(tag(&event, "rpc.method"), Some("fail"));
    assert_eq!(tag(&event, "env"), Some("test"));
}
