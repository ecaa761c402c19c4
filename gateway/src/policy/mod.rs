//! Who may use which tool, resource and prompt: a route's [`Policy`] applied to one caller and one
//! named thing. The data plane asks it of every MCP message (and of every item of a list it
//! answers); the authorization server asks it which reserved scopes a user may be granted.
//!
//! Rules are tried in order; the first whose conditions all hold decides. A rule that would allow
//! but for a scope the token lacks does not decide: if nothing later allows, the caller is told
//! to step up to that scope (403 `insufficient_scope`), which the authorization server grants only
//! to callers the rule matches. A `when` expression that cannot be run holds for a deny rule and
//! not for an allow rule: an error never lets a call through.

use std::borrow::Cow;

use crate::config::{Effect, Facts, Kind, Policy, Rule, uri};
use crate::store::records::UserIdentity;
use crate::tokens::access::AccessClaims;

/// Who is calling, as the rules see them.
pub(crate) struct Caller<'a> {
    pub sub: &'a str,
    pub name: &'a str,
    /// Lowercased, as `emails` rules are.
    pub email: Cow<'a, str>,
    pub groups: &'a [String],
    /// The provider listed more groups than `groups` holds: deny rules by group hold.
    pub groups_truncated: bool,
    pub client_id: &'a str,
    /// The token's scopes, space-separated (empty when granting: the grant is being decided).
    pub scope: &'a str,
}

impl<'a> Caller<'a> {
    pub(crate) fn of(claims: &'a AccessClaims) -> Self {
        Self {
            scope: &claims.scope,
            ..Self::new(
                &claims.sub,
                claims.preferred_username.as_deref(),
                claims.email.as_deref(),
                &claims.groups,
                claims.groups_truncated,
                &claims.client_id,
            )
        }
    }

    /// A user through `client_id`, holding no scopes yet (what the authorization server asks
    /// about).
    pub(crate) fn of_user(user: &'a UserIdentity, client_id: &'a str) -> Self {
        Self::new(
            &user.sub,
            user.preferred_username.as_deref(),
            user.email.as_deref(),
            &user.groups,
            user.groups_truncated,
            client_id,
        )
    }

    fn new(
        sub: &'a str,
        name: Option<&'a str>,
        email: Option<&'a str>,
        groups: &'a [String],
        groups_truncated: bool,
        client_id: &'a str,
    ) -> Self {
        let email = email.unwrap_or_default();
        Self {
            sub,
            name: name.unwrap_or_default(),
            email: if email.chars().any(char::is_uppercase) {
                Cow::Owned(email.to_lowercase())
            } else {
                Cow::Borrowed(email)
            },
            groups,
            groups_truncated,
            client_id,
            scope: "",
        }
    }

    /// The token's scopes.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.scope.split_ascii_whitespace()
    }
}

/// A named thing a message uses: a tool, a resource (by URI) or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    pub kind: Kind,
    pub name: &'a str,
}

/// What the policy says of one use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision<'p> {
    Allow(Reason),
    Deny(Reason),
    /// Allowed by the rule `rule` with these scopes, which the token lacks and the caller may be
    /// granted.
    StepUp {
        scopes: &'p [String],
        rule: usize,
    },
}

/// What decided: a rule, by its place in the policy, or the policy's default. Kept as a number
/// (the audit trail names it when it is written), so that deciding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Rule(usize),
    Default,
    /// A resource URI a rule names that servers read differently as a path (dot segments, encoded
    /// or back slashes), refused before any rule.
    AmbiguousUri,
}

impl Reason {
    /// The rule's name, "default", or "ambiguous_uri".
    pub(crate) fn name(self, policy: &Policy) -> &str {
        match self {
            Reason::Rule(i) => policy.rules.get(i).map_or("?", |r| r.name.as_str()),
            Reason::Default => "default",
            Reason::AmbiguousUri => "ambiguous_uri",
        }
    }
}

impl Decision<'_> {
    pub(crate) fn allows(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// Whether a list shows the thing: the caller may use it, or step up to.
    pub(crate) fn shows(&self) -> bool {
        !matches!(self, Decision::Deny(_))
    }

    /// The rule (or the default) that decided, for the audit trail.
    pub(crate) fn reason(&self) -> Reason {
        match self {
            Decision::Allow(reason) | Decision::Deny(reason) => *reason,
            Decision::StepUp { rule, .. } => Reason::Rule(*rule),
        }
    }

    /// The `decision` label and audit word.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny(_) => "deny",
            Decision::StepUp { .. } => "step_up",
        }
    }
}

/// Decides whether `caller` may use `target` (through `method`). A resource is named by its URI
/// normalised (RFC 3986 §6), as the rules' are; one that servers read differently as a path is
/// refused when a rule names it, or names where it may lead.
pub(crate) fn decide<'p>(
    policy: &'p Policy,
    caller: &Caller,
    method: &str,
    target: Target,
) -> Decision<'p> {
    if target.kind != Kind::Resource {
        return decide_named(policy, caller, method, target);
    }
    let uri = uri::normalise(target.name);
    if uri::is_ambiguous(&uri) {
        let resolved = uri::resolved(&uri);
        let named = policy.rules.iter().any(|r| {
            r.resources
                .as_ref()
                .is_some_and(|names| names.matches(&uri) || names.matches(&resolved))
        });
        if named {
            return Decision::Deny(Reason::AmbiguousUri);
        }
    }
    let target = Target {
        kind: Kind::Resource,
        name: &uri,
    };
    decide_named(policy, caller, method, target)
}

fn decide_named<'p>(
    policy: &'p Policy,
    caller: &Caller,
    method: &str,
    target: Target,
) -> Decision<'p> {
    let mut step_up: Option<(usize, &'p Rule)> = None;
    for (index, rule) in policy.rules.iter().enumerate() {
        if !rule.is_about(target.kind, target.name) || !matches_who(rule, caller) {
            continue;
        }
        // A user whose groups were cut short may be in any: a deny rule asking about them holds.
        let truncated = caller.groups_truncated && rule.effect == Effect::Deny;
        if let Some(when) = rule
            .when
            .as_ref()
            .filter(|w| !(truncated && w.reads_user()))
        {
            let scopes: Vec<&str> = caller.scopes().collect();
            let facts = Facts {
                sub: caller.sub,
                name: caller.name,
                email: &caller.email,
                groups: caller.groups,
                client_id: caller.client_id,
                scopes: &scopes,
                method,
                kind: target.kind.as_str(),
                target: target.name,
            };
            let holds = when.holds(&facts).unwrap_or_else(|error| {
                tracing::warn!(rule = %rule.name, %error, "a policy condition could not be run");
                rule.effect == Effect::Deny
            });
            if !holds {
                continue;
            }
        }
        if !rule
            .scopes
            .iter()
            .all(|s| caller.scopes().any(|held| held == s))
        {
            // A deny rule reserved to some scopes does not apply without them; an allow rule
            // would, with them.
            if rule.effect == Effect::Allow && step_up.is_none() {
                step_up = Some((index, rule));
            }
            continue;
        }
        return match rule.effect {
            Effect::Allow => Decision::Allow(Reason::Rule(index)),
            Effect::Deny => denied(step_up, Reason::Rule(index)),
        };
    }
    match policy.default {
        Effect::Allow => Decision::Allow(Reason::Default),
        Effect::Deny => denied(step_up, Reason::Default),
    }
}

/// A denial, or a step-up when an earlier allow rule would have allowed with more scopes.
fn denied(step_up: Option<(usize, &Rule)>, reason: Reason) -> Decision<'_> {
    match step_up {
        Some((index, rule)) => Decision::StepUp {
            scopes: &rule.scopes,
            rule: index,
        },
        None => Decision::Deny(reason),
    }
}

/// Whether `caller` may be granted `scope` on a route with `policy`: a scope no allow rule
/// reserves, or one an allow rule reserves and whose conditions on who the caller is hold (its
/// `when` is not run: it needs a call to run against).
pub(crate) fn may_be_granted(policy: &Policy, caller: &Caller, scope: &str) -> bool {
    let mut reserved = false;
    for rule in policy.rules.iter().filter(|r| r.effect == Effect::Allow) {
        if rule.scopes.iter().any(|s| s == scope) {
            reserved = true;
            if matches_who(rule, caller) {
                return true;
            }
        }
    }
    !reserved
}

/// Whether every condition of `rule` on who the caller is holds. Users are named by the stable
/// `sub` tokens carry (a provider's display name can be edited, and a GitHub login taken after a
/// rename); a user whose groups were cut short counts as in every group a deny rule names.
fn matches_who(rule: &Rule, caller: &Caller) -> bool {
    if let Some(users) = &rule.users
        && !users.matches(caller.sub)
    {
        return false;
    }
    if let Some(emails) = &rule.emails
        && (caller.email.is_empty() || !emails.matches(&caller.email))
    {
        return false;
    }
    if let Some(groups) = &rule.groups
        && !(groups.iter().any(|g| caller.groups.contains(g))
            || (caller.groups_truncated && rule.effect == Effect::Deny))
    {
        return false;
    }
    if let Some(clients) = &rule.clients
        && !clients.iter().any(|c| c == caller.client_id)
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
