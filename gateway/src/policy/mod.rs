//! Who may use which tool, resource and prompt: a route's [`Policy`] applied to one caller and one
//! named thing. The data plane asks it of every MCP message (and of every item of a list it
//! answers); the authorization server asks it which reserved scopes a user may be granted.
//!
//! Rules are tried in order; the first whose conditions all hold decides. A rule that would allow
//! but for a scope the token lacks does not decide: if nothing later allows, the caller is told
//! to step up to that scope (403 `insufficient_scope`), which the authorization server grants only
//! to callers the rule matches. A `when` expression that cannot be run holds for a deny rule and
//! not for an allow rule: an error never lets a call through.

use crate::config::{Effect, Facts, Kind, Policy, Rule};
use crate::tokens::access::AccessClaims;

/// Who is calling, as the rules see them.
pub struct Caller<'a> {
    pub sub: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
    pub client_id: &'a str,
    /// The token's scopes (empty when granting: the grant is being decided).
    pub scopes: Vec<&'a str>,
}

impl<'a> Caller<'a> {
    pub fn of(claims: &'a AccessClaims) -> Self {
        Self {
            sub: &claims.sub,
            name: claims.preferred_username.as_deref().unwrap_or_default(),
            email: claims.email.as_deref().unwrap_or_default(),
            groups: &claims.groups,
            client_id: &claims.client_id,
            scopes: claims.scopes().collect(),
        }
    }
}

/// A named thing a message uses: a tool, a resource (by URI) or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: Kind,
    pub name: &'a str,
}

/// What the policy says of one use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'p> {
    Allow(Reason<'p>),
    Deny(Reason<'p>),
    /// Allowed with these scopes, which the token lacks and the caller may be granted.
    StepUp {
        scopes: &'p [String],
        rule: &'p str,
    },
}

/// What decided: a rule, by name, or the policy's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'p> {
    Rule(&'p str),
    Default,
}

impl Reason<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Rule(name) => name,
            Reason::Default => "default",
        }
    }
}

impl Decision<'_> {
    pub fn allows(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The rule (or "default") that decided, for the audit trail.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow(reason) | Decision::Deny(reason) => reason.as_str(),
            Decision::StepUp { rule, .. } => rule,
        }
    }

    /// The `decision` label and audit word.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny(_) => "deny",
            Decision::StepUp { .. } => "step_up",
        }
    }
}

/// Decides whether `caller` may use `target` (through `method`).
pub fn decide<'p>(
    policy: &'p Policy,
    caller: &Caller,
    method: &str,
    target: Target,
) -> Decision<'p> {
    let mut step_up: Option<&'p Rule> = None;
    for rule in &policy.rules {
        if !rule.is_about(target.kind, target.name) || !matches_who(rule, caller) {
            continue;
        }
        if let Some(when) = &rule.when {
            let facts = Facts {
                sub: caller.sub,
                name: caller.name,
                email: caller.email,
                groups: caller.groups,
                client_id: caller.client_id,
                scopes: &caller.scopes,
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
            .all(|s| caller.scopes.contains(&s.as_str()))
        {
            // A deny rule reserved to some scopes does not apply without them; an allow rule
            // would, with them.
            if rule.effect == Effect::Allow && step_up.is_none() {
                step_up = Some(rule);
            }
            continue;
        }
        return match rule.effect {
            Effect::Allow => Decision::Allow(Reason::Rule(&rule.name)),
            Effect::Deny => denied(step_up, Reason::Rule(&rule.name)),
        };
    }
    match policy.default {
        Effect::Allow => Decision::Allow(Reason::Default),
        Effect::Deny => denied(step_up, Reason::Default),
    }
}

/// A denial, or a step-up when an earlier allow rule would have allowed with more scopes.
fn denied<'p>(step_up: Option<&'p Rule>, reason: Reason<'p>) -> Decision<'p> {
    match step_up {
        Some(rule) => Decision::StepUp {
            scopes: &rule.scopes,
            rule: &rule.name,
        },
        None => Decision::Deny(reason),
    }
}

/// Whether `caller` may be granted `scope` on a route with `policy`: a scope no allow rule
/// reserves, or one an allow rule reserves and whose conditions on who the caller is hold (its
/// `when` is not run: it needs a call to run against).
pub fn may_be_granted(policy: &Policy, caller: &Caller, scope: &str) -> bool {
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

/// Whether every condition of `rule` on who the caller is holds.
fn matches_who(rule: &Rule, caller: &Caller) -> bool {
    if let Some(users) = &rule.users
        && !(users.matches(caller.sub) || (!caller.name.is_empty() && users.matches(caller.name)))
    {
        return false;
    }
    if let Some(emails) = &rule.emails
        && (caller.email.is_empty() || !emails.matches(&caller.email.to_lowercase()))
    {
        return false;
    }
    if let Some(groups) = &rule.groups
        && !groups.iter().any(|g| caller.groups.contains(g))
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
