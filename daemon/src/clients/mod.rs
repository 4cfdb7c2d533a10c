//! Clients and upstreams, managed over the config: the edits `wgsplit client …`,
//! `wgsplit upstream …` and the REST API make. Every edit is a pure function of
//! the config; [`store::Store::edit`] wraps it in one lock, validation of the
//! whole result and an atomic write, so a bad edit writes nothing.

pub mod alloc;
pub mod conf;
pub mod import;
pub mod live;
pub mod qr;
pub mod stats;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    config::{
        Action, Client, Config, Problem, Rule, Upstream, convert::section_path,
        validate::check_name,
    },
    util::keys,
};

pub use crate::config::store::EditError;

fn invalid(path: &str, message: impl Into<String>) -> EditError {
    EditError::Invalid(vec![Problem::new(path, message)])
}

/// A new client as `client add` and `POST /api/clients` describe it. Keys are
/// generated on the router unless `public_key` brings the client's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: String,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub default: Option<Action>,
    #[serde(default)]
    pub expires: Option<String>,
    /// Empty: the next free IPv4 (and IPv6, when the server has address6).
    #[serde(default)]
    pub address: Vec<String>,
    /// Generate a preshared key.
    #[serde(default)]
    pub psk: bool,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub quota: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The DNS bypass guard (`false`: off for this client); unset: on.
    #[serde(default)]
    pub dns_guard: Option<bool>,
}

/// Is `name` free among every section name (uci names are one namespace)?
/// If not, what holds it, as the message names it (util::msgcode has one
/// code per holder, so a front end translates the whole sentence).
fn name_taken(config: &Config, name: &str) -> Option<&'static str> {
    if config.clients.iter().any(|c| c.name == name) {
        Some("a client")
    } else if config.upstreams.iter().any(|u| u.name == name) {
        Some("an upstream")
    } else if config.rules.iter().any(|r| r.name.as_deref() == Some(name)) {
        Some("a rule")
    } else if config.lists.iter().any(|l| l.name == name) {
        Some("a list")
    } else if name == "server" {
        Some("the server section")
    } else {
        None
    }
}

fn check_new_name(config: &Config, name: &str) -> Result<(), EditError> {
    check_name(name).map_err(|e| invalid(&format!("{name}.name"), e))?;
    match name_taken(config, name) {
        Some(holder) => Err(EditError::Conflict(format!(
            "the name '{name}' is already used by {holder}"
        ))),
        None => Ok(()),
    }
}

/// Adds a client: keys, addresses, then the whole config is validated.
pub fn add_client(config: &mut Config, new: NewClient) -> Result<Client, EditError> {
    check_new_name(config, &new.name)?;
    let (public_key, private_key) = match new.public_key {
        Some(k) => (Some(k), None),
        None => (None, Some(keys::encode(&keys::generate_private()))),
    };
    let address = if new.address.is_empty() {
        alloc::allocate(config).map_err(|p| EditError::Invalid(vec![p]))?
    } else {
        new.address
    };
    let client = Client {
        name: new.name,
        public_key,
        private_key,
        preshared_key: new.psk.then(|| keys::encode(&keys::generate_preshared())),
        address,
        enabled: new.enabled,
        expires: new.expires,
        upstream: new.upstream,
        default: new.default,
        description: new.description,
        quota: new.quota,
        dns_guard: new.dns_guard,
    };
    config.clients.push(client.clone());
    Ok(client)
}

pub fn client_index(config: &Config, name: &str) -> Result<usize, EditError> {
    config
        .clients
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| EditError::NotFound(format!("no client named '{name}'")))
}

pub fn upstream_index(config: &Config, name: &str) -> Result<usize, EditError> {
    config
        .upstreams
        .iter()
        .position(|u| u.name == name)
        .ok_or_else(|| EditError::NotFound(format!("no upstream named '{name}'")))
}

/// Removes a client and its rules (a rule without its client is invalid).
/// Its addresses become free for the next client.
pub fn remove_client(config: &mut Config, name: &str) -> Result<(Client, usize), EditError> {
    let i = client_index(config, name)?;
    let client = config.clients.remove(i);
    let before = config.rules.len();
    config.rules.retain(|r| r.client != name);
    Ok((client, before - config.rules.len()))
}

/// Renames a client; its rules follow.
pub fn rename_client(config: &mut Config, old: &str, new: &str) -> Result<(), EditError> {
    let i = client_index(config, old)?;
    if old == new {
        return Ok(());
    }
    check_new_name(config, new)?;
    config.clients[i].name = new.to_string();
    for r in config.rules.iter_mut().filter(|r| r.client == old) {
        r.client = new.to_string();
    }
    Ok(())
}

pub fn set_client_enabled(config: &mut Config, name: &str, on: bool) -> Result<(), EditError> {
    let i = client_index(config, name)?;
    // `enabled` defaults to 1: write only the 0.
    config.clients[i].enabled = if on { None } else { Some(false) };
    Ok(())
}

pub fn set_upstream_enabled(config: &mut Config, name: &str, on: bool) -> Result<(), EditError> {
    let i = upstream_index(config, name)?;
    config.upstreams[i].enabled = if on { None } else { Some(false) };
    Ok(())
}

/// RFC 7396 JSON merge patch: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a merge patch to one section's JSON form; type errors name the field
/// under `path` (`alice.enabled`).
fn patched<T: Serialize + DeserializeOwned>(
    item: &T,
    patch: &serde_json::Value,
    path: &str,
) -> Result<T, EditError> {
    if !patch.is_object() {
        return Err(invalid(path, "the patch must be a JSON object"));
    }
    let mut value = serde_json::to_value(item).expect("the model always serialises");
    merge_patch(&mut value, patch);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        invalid(
            &format!("{path}{}{field}", if field.is_empty() { "" } else { "." }),
            e.into_inner().to_string(),
        )
    })
}

/// `PATCH /api/clients/NAME`: a merge patch of the client's JSON form. A new
/// `name` renames it (its rules follow).
pub fn patch_client(
    config: &mut Config,
    name: &str,
    patch: &serde_json::Value,
) -> Result<Client, EditError> {
    let i = client_index(config, name)?;
    let updated: Client = patched(&config.clients[i], patch, name)?;
    if updated.name != name {
        rename_client(config, name, &updated.name)?;
    }
    config.clients[i] = updated.clone();
    Ok(updated)
}

/// Adds an upstream (from JSON or an imported wg-quick file).
pub fn add_upstream(config: &mut Config, upstream: Upstream) -> Result<(), EditError> {
    check_new_name(config, &upstream.name)?;
    config.upstreams.push(upstream);
    Ok(())
}

/// What still names an upstream: clients, rules and other upstreams' failover.
pub fn upstream_users(config: &Config, name: &str) -> Vec<String> {
    let mut users = Vec::new();
    for c in config
        .clients
        .iter()
        .filter(|c| c.upstream.as_deref() == Some(name))
    {
        users.push(format!("client {}", c.name));
    }
    let mut anonymous = 0;
    for r in &config.rules {
        let path = section_path("rule", r.name.as_deref(), anonymous);
        if r.name.is_none() {
            anonymous += 1;
        }
        if r.upstream.as_deref() == Some(name) {
            users.push(format!("rule {path}"));
        }
    }
    for u in config
        .upstreams
        .iter()
        .filter(|u| u.failover.as_deref() == Some(name))
    {
        users.push(format!("upstream {} (failover)", u.name));
    }
    users
}

/// Removes an upstream that nothing uses any more.
pub fn remove_upstream(config: &mut Config, name: &str) -> Result<Upstream, EditError> {
    let i = upstream_index(config, name)?;
    let users = upstream_users(config, name);
    if !users.is_empty() {
        return Err(EditError::Conflict(format!(
            "upstream '{name}' is still used by {}; change those first",
            users.join(", ")
        )));
    }
    Ok(config.upstreams.remove(i))
}

/// `PATCH /api/upstreams/NAME`. Renaming is refused (clients and rules name it).
pub fn patch_upstream(
    config: &mut Config,
    name: &str,
    patch: &serde_json::Value,
) -> Result<Upstream, EditError> {
    let i = upstream_index(config, name)?;
    let updated: Upstream = patched(&config.upstreams[i], patch, name)?;
    if updated.name != name {
        return Err(invalid(
            &format!("{name}.name"),
            "an upstream can't be renamed; add a new one and move its users",
        ));
    }
    config.upstreams[i] = updated.clone();
    Ok(updated)
}

/// A rule by its id: its section name, or its index in the rule list.
pub fn rule_index(config: &Config, id: &str) -> Result<usize, EditError> {
    if let Some(i) = config
        .rules
        .iter()
        .position(|r| r.name.as_deref() == Some(id))
    {
        return Ok(i);
    }
    match id.parse::<usize>() {
        Ok(i) if i < config.rules.len() => Ok(i),
        _ => Err(EditError::NotFound(format!("no rule '{id}'"))),
    }
}

/// Inserts a rule at `position` in the global rule list (the end by default).
/// Order matters only among one client's rules.
pub fn add_rule(
    config: &mut Config,
    rule: Rule,
    position: Option<usize>,
) -> Result<usize, EditError> {
    if let Some(n) = &rule.name {
        check_new_name(config, n)?;
    }
    let at = position.unwrap_or(config.rules.len());
    if at > config.rules.len() {
        return Err(invalid(
            "position",
            format!("{at} is past the end ({} rules)", config.rules.len()),
        ));
    }
    config.rules.insert(at, rule);
    Ok(at)
}

pub fn patch_rule(
    config: &mut Config,
    id: &str,
    patch: &serde_json::Value,
) -> Result<Rule, EditError> {
    let i = rule_index(config, id)?;
    let path = section_path("rule", config.rules[i].name.as_deref(), i);
    let updated: Rule = patched(&config.rules[i], patch, &path)?;
    if updated.name != config.rules[i].name
        && let Some(n) = &updated.name
    {
        check_new_name(config, n)?;
    }
    config.rules[i] = updated.clone();
    Ok(updated)
}

pub fn remove_rule(config: &mut Config, id: &str) -> Result<Rule, EditError> {
    let i = rule_index(config, id)?;
    Ok(config.rules.remove(i))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn example() -> Config {
        crate::config::parse_valid(include_str!("../../../examples/wgsplit.conf")).unwrap()
    }

    fn valid(config: &Config) {
        let problems = crate::config::validate::validate(config);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn add_allocates_keys_and_addresses() {
        let mut c = example();
        let new = add_client(
            &mut c,
            NewClient {
                name: "dave".into(),
                psk: true,
                upstream: Some("us1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(new.address, vec!["10.8.0.5/32", "fd42:8::5/128"]);
        assert!(new.private_key.is_some() && new.public_key.is_none());
        assert!(new.preshared_key.is_some());
        valid(&c);
        // Freed addresses are reused, lowest first.
        remove_client(&mut c, "alice").unwrap();
        let eve = add_client(
            &mut c,
            NewClient {
                name: "eve".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(eve.address, vec!["10.8.0.2/32", "fd42:8::2/128"]);
        valid(&c);
    }

    #[test]
    fn names_are_one_namespace() {
        let mut c = example();
        for (name, want) in [
            ("alice", "client"),
            ("us1", "upstream"),
            ("server", "server"),
        ] {
            let e = add_client(
                &mut c,
                NewClient {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert!(
                matches!(&e, EditError::Conflict(m) if m.contains(want)),
                "{e}"
            );
        }
        let e = add_client(
            &mut c,
            NewClient {
                name: "bad name".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(&e, EditError::Invalid(p) if p[0].path == "bad name.name"));
    }

    #[test]
    fn remove_and_rename_carry_rules() {
        let mut c = example();
        rename_client(&mut c, "alice", "alicia").unwrap();
        assert_eq!(c.rules.iter().filter(|r| r.client == "alicia").count(), 2);
        valid(&c);
        let (_, rules) = remove_client(&mut c, "alicia").unwrap();
        assert_eq!(rules, 2);
        valid(&c);
        assert!(matches!(
            remove_client(&mut c, "alicia"),
            Err(EditError::NotFound(_))
        ));
        assert!(matches!(
            rename_client(&mut c, "bob", "carol"),
            Err(EditError::Conflict(_))
        ));
    }

    #[test]
    fn upstream_in_use_is_kept() {
        let mut c = example();
        let e = remove_upstream(&mut c, "us1").unwrap_err().to_string();
        assert!(
            e.contains("client alice") && e.contains("upstream eu1 (failover)"),
            "{e}"
        );
        set_upstream_enabled(&mut c, "us1", false).unwrap();
        assert_eq!(c.upstreams[0].enabled, Some(false));
    }

    #[test]
    fn patches_name_the_bad_field() {
        let mut c = example();
        let p = serde_json::json!({"enabled": "yes"});
        match patch_client(&mut c, "bob", &p).unwrap_err() {
            EditError::Invalid(p) => assert_eq!(p[0].path, "bob.enabled"),
            e => panic!("{e}"),
        }
        let p = serde_json::json!({"colour": 1});
        assert!(matches!(
            patch_client(&mut c, "bob", &p),
            Err(EditError::Invalid(_))
        ));
        let p = serde_json::json!({"description": "phone", "expires": null, "name": "robert"});
        let b = patch_client(&mut c, "bob", &p).unwrap();
        assert_eq!(b.description.as_deref(), Some("phone"));
        assert!(c.rules.iter().any(|r| r.client == "robert"));
        valid(&c);
        let r = patch_rule(&mut c, "0", &serde_json::json!({"action": "direct"})).unwrap();
        assert_eq!(r.action, Action::Direct);
        assert!(matches!(rule_index(&c, "99"), Err(EditError::NotFound(_))));
    }
}
