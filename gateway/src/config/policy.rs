//! `[routes.policy]`: who may call which tool, read which resource and get which prompt on a
//! route. Rules are tried in order and the first that matches decides; `default` decides when none
//! does. Names are exact or hold wildcards (`*` any run of characters, `?` any one), compiled here
//! once; a rule that could never match is an error, so that `check` catches it rather than the
//! first caller refused.

use wildmatch::WildMatch;

pub(crate) use super::file::Effect;
use super::file::{PolicyFile, RuleFile};
use super::when::Condition;
use super::{ConfigError, Errors};

/// A route's policy, validated.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub default: Effect,
    pub rules: Vec<Rule>,
    /// The policy as written, to tell whether a reload changed it.
    pub written: String,
}

/// What a rule is about: a kind of named thing MCP lets a caller use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }

    /// The method that uses a thing of this kind.
    pub(crate) fn call_method(self) -> &'static str {
        match self {
            Kind::Tool => "tools/call",
            Kind::Resource => "resources/read",
            Kind::Prompt => "prompts/get",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Its `name`, or `rules[N]`.
    pub name: String,
    pub effect: Effect,
    /// The tools, resources and prompts it is about; `None` for each when the rule names none of
    /// the three (it is about everything).
    pub tools: Option<Names>,
    pub resources: Option<Names>,
    pub prompts: Option<Names>,
    /// It names none of the three, and is about everything.
    about_everything: bool,
    pub users: Option<Names>,
    /// Matched lowercased.
    pub emails: Option<Names>,
    pub groups: Option<Vec<String>>,
    pub clients: Option<Vec<String>>,
    /// Scopes the caller's token must hold (empty: none).
    pub scopes: Vec<String>,
    pub when: Option<Condition>,
}

/// Names as written (exact or with wildcards), and their matchers. Matching runs on every message
/// for every rule tried (and for every item of a list), so the common forms — an exact name, a
/// prefix (`get_*`), a suffix (`*@example.com`) — are compared as strings, and only other
/// patterns go through a wildcard matcher.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub written: Vec<String>,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Wild(WildMatch),
}

impl Pattern {
    fn new(written: &str) -> Self {
        let plain = |s: &str| !has_wildcard(s);
        match (written.strip_prefix('*'), written.strip_suffix('*')) {
            _ if written == "*" => Pattern::Any,
            _ if plain(written) => Pattern::Exact(written.to_owned()),
            (None, Some(prefix)) if plain(prefix) => Pattern::Prefix(prefix.to_owned()),
            (Some(suffix), None) if plain(suffix) => Pattern::Suffix(suffix.to_owned()),
            _ => Pattern::Wild(WildMatch::new(written)),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => name == exact,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Pattern::Suffix(suffix) => name.ends_with(suffix.as_str()),
            Pattern::Any => true,
            Pattern::Wild(wild) => wild.matches(name),
        }
    }
}

impl Names {
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(name))
    }

    /// Whether every name `other` can match, this matches too (checked for plain names and for
    /// `*`; a wildcard in `other` is taken to be covered only by `*`).
    fn covers(&self, other: &Names) -> bool {
        self.written.iter().any(|w| w == "*")
            || other
                .written
                .iter()
                .all(|name| !has_wildcard(name) && self.matches(name))
    }
}

impl Rule {
    /// The names this rule is about for `kind`; `None` when it is not about `kind` at all.
    fn names(&self, kind: Kind) -> Option<Option<&Names>> {
        if self.about_everything {
            return Some(None);
        }
        match kind {
            Kind::Tool => self.tools.as_ref().map(Some),
            Kind::Resource => self.resources.as_ref().map(Some),
            Kind::Prompt => self.prompts.as_ref().map(Some),
        }
    }

    /// Whether the rule is about `name` of `kind`.
    #[inline]
    pub(crate) fn is_about(&self, kind: Kind, name: &str) -> bool {
        match self.names(kind) {
            None => false,
            Some(None) => true,
            Some(Some(names)) => names.matches(name),
        }
    }

    /// Whether the rule holds for every caller (no condition on who, no scope, no expression).
    fn unconditional(&self) -> bool {
        self.users.is_none()
            && self.emails.is_none()
            && self.groups.is_none()
            && self.clients.is_none()
            && self.scopes.is_empty()
            && self.when.is_none()
    }

    /// Whether this rule is about everything `later` is about.
    fn covers(&self, later: &Rule) -> bool {
        [Kind::Tool, Kind::Resource, Kind::Prompt]
            .into_iter()
            .all(|kind| match (self.names(kind), later.names(kind)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(None), Some(_)) => true,
                (Some(Some(_)), Some(None)) => false,
                (Some(Some(mine)), Some(Some(theirs))) => mine.covers(theirs),
            })
    }

    /// One line for `check`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} {}",
            self.name,
            match self.effect {
                Effect::Allow => "allow",
                Effect::Deny => "deny",
            }
        )];
        let list = |label: &str, names: &[String]| format!("{label} [{}]", names.join(", "));
        if self.about_everything {
            parts.push("everything".into());
        }
        for (label, names) in [
            ("tools", &self.tools),
            ("resources", &self.resources),
            ("prompts", &self.prompts),
            ("users", &self.users),
            ("emails", &self.emails),
        ] {
            if let Some(names) = names {
                parts.push(list(label, &names.written));
            }
        }
        for (label, names) in [("groups", &self.groups), ("clients", &self.clients)] {
            if let Some(names) = names {
                parts.push(list(label, names));
            }
        }
        if !self.scopes.is_empty() {
            parts.push(list("with scopes", &self.scopes));
        }
        if let Some(when) = &self.when {
            parts.push(format!("when {}", when.source()));
        }
        parts.join(" ")
    }
}

impl Policy {
    /// Scopes only some callers are granted: those an allow rule requires.
    pub(crate) fn restricted_scopes(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| r.effect == Effect::Allow)
            .flat_map(|r| r.scopes.iter().map(String::as_str))
    }

    /// Whether a rule asks which groups a caller is in.
    pub(crate) fn uses_groups(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.groups.is_some() || r.when.as_ref().is_some_and(Condition::reads_user))
    }

    /// Whether a rule asks for a caller's email.
    pub(crate) fn uses_emails(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.emails.is_some() || r.when.as_ref().is_some_and(Condition::reads_user))
    }
}

/// Validates `[routes.policy]` of a route offering `supported` scopes and requiring `required`.
pub(super) fn settings(
    file: &PolicyFile,
    supported: &[String],
    required: &[String],
    errors: &Errors,
    at: &str,
) -> Result<Policy, ConfigError> {
    let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
    for (i, rule) in file.rules.iter().enumerate() {
        let at = format!("{at}.rules[{i}]");
        let rule = validate_rule(rule, i, supported, required, errors, &at)?;
        if let Some(earlier) = rules.iter().find(|e| e.unconditional() && e.covers(&rule)) {
            return Err(errors.at(
                &at,
                format!(
                    "can never match: {} before it decides for every caller of what it is about",
                    earlier.name
                ),
            ));
        }
        rules.push(rule);
    }
    Ok(Policy {
        default: file.default.unwrap_or(Effect::Deny),
        rules,
        written: format!("{file:?}"),
    })
}

fn validate_rule(
    rule: &RuleFile,
    index: usize,
    supported: &[String],
    required: &[String],
    errors: &Errors,
    at: &str,
) -> Result<Rule, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let names = |list: &Option<Vec<String>>, k: &str, form: Form| {
        list.as_ref()
            .map(|list| compile(list, form).map_err(|reason| errors.at(&key(k), reason)))
            .transpose()
    };
    let exact = |list: &Option<Vec<String>>, k: &str| match list {
        Some(list) => listed(list)
            .map(|()| Some(list.clone()))
            .map_err(|reason| errors.at(&key(k), reason)),
        None => Ok(None),
    };
    let scopes = exact(&rule.scopes, "scopes")?.unwrap_or_default();
    if rule.effect == Effect::Deny && !scopes.is_empty() {
        return Err(errors.at(
            &key("scopes"),
            "a deny rule cannot be about scopes: a caller would step out of it by asking for fewer; \
             deny by who the caller is (users, groups, clients) instead",
        ));
    }
    for scope in &scopes {
        if !supported.contains(scope) {
            return Err(errors.at(
                &key("scopes"),
                format!("{scope:?} is not in the route's scopes_supported: no token can hold it"),
            ));
        }
        if rule.effect == Effect::Allow && required.contains(scope) {
            return Err(errors.at(
                &key("scopes"),
                format!(
                    "{scope:?} is a required scope, which every caller holds; a rule cannot reserve it"
                ),
            ));
        }
    }
    let name = match &rule.name {
        Some(name) if name.trim().is_empty() || name.len() > 64 => {
            return Err(errors.at(&key("name"), "must be 1 to 64 characters"));
        }
        Some(name) => name.clone(),
        None => format!("rules[{index}]"),
    };
    let when = rule
        .when
        .as_deref()
        .map(|source| Condition::compile(source).map_err(|reason| errors.at(&key("when"), reason)))
        .transpose()?;
    Ok(Rule {
        name,
        effect: rule.effect,
        about_everything: rule.tools.is_none()
            && rule.resources.is_none()
            && rule.prompts.is_none(),
        tools: names(&rule.tools, "tools", Form::AsWritten)?,
        resources: names(&rule.resources, "resources", Form::Uri)?,
        prompts: names(&rule.prompts, "prompts", Form::AsWritten)?,
        users: names(&rule.users, "users", Form::AsWritten)?,
        emails: names(&rule.emails, "emails", Form::Lowercase)?,
        groups: exact(&rule.groups, "groups")?,
        clients: exact(&rule.clients, "clients")?,
        scopes,
        when,
    })
}

/// Whether a list a rule gives can match: it holds names, none of them blank.
fn listed(list: &[String]) -> Result<(), &'static str> {
    if list.is_empty() {
        return Err("an empty list matches nothing; leave the key out to match any");
    }
    if list.iter().any(|n| n.trim().is_empty()) {
        return Err("an empty name matches nothing");
    }
    Ok(())
}

/// How names are compared: as written, in lower case (emails), or as normalised URIs.
#[derive(Clone, Copy)]
enum Form {
    AsWritten,
    Lowercase,
    Uri,
}

/// Compiles names, each exact or with wildcards.
fn compile(list: &[String], form: Form) -> Result<Names, &'static str> {
    listed(list)?;
    let mut written = Vec::with_capacity(list.len());
    for name in list {
        written.push(match form {
            Form::AsWritten => name.clone(),
            Form::Lowercase => name.to_lowercase(),
            Form::Uri => super::uri::normalise(name).into_owned(),
        });
    }
    let patterns = written.iter().map(|n| Pattern::new(n)).collect();
    Ok(Names { written, patterns })
}

/// Whether a name holds a wildcard.
fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_of_name_matches_as_a_wildcard_would() {
        let names = [
            "echo",
            "get_*",
            "*@example.com",
            "*",
            "a*b",
            "*mid*",
            "?x",
            "get_",
            "x*y*z",
            "**",
        ];
        let candidates = [
            "echo",
            "echoes",
            "get_",
            "get_a",
            "ada@example.com",
            "@example.com",
            "ab",
            "a_b",
            "ba",
            "mid",
            "xmidx",
            "ax",
            "x",
            "",
            "xyz",
            "x_y_z",
            "get",
            "é*",
            "\u{1F600}x",
        ];
        for name in names {
            let pattern = Pattern::new(name);
            let wild = WildMatch::new(name);
            for candidate in candidates {
                assert_eq!(
                    pattern.matches(candidate),
                    wild.matches(candidate),
                    "{name:?} against {candidate:?}: {pattern:?}"
                );
            }
        }
    }
}
