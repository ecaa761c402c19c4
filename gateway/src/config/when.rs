//! A rule's `when`: a CEL expression (the language agentgateway's policies use), compiled once when
//! the config is read and run against what is known of a call.
//!
//! Its variables:
//! - `user`: `sub`, `name` (user name), `email` (verified, or ""), `groups` (a list);
//! - `client`: `id`;
//! - `scopes`: the token's scopes (a list);
//! - `mcp`: `method`, `kind` ("tool", "resource" or "prompt") and `name` (tool, URI or prompt).
//!
//! An expression that is not true — false, another type, or an error such as a missing key — does
//! not hold; the policy decides what that means for the rule ([`crate::policy`]).

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};

/// The variables an expression may use.
const VARIABLES: &[&str] = &["user", "client", "scopes", "mcp"];

/// The CEL standard library, built once: building it costs more than running most expressions.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

#[derive(Clone)]
pub(crate) struct Condition {
    source: String,
    program: Arc<Program>,
    reads_user: bool,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// What an expression is run against.
pub(crate) struct Facts<'a> {
    pub sub: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
    pub client_id: &'a str,
    pub scopes: &'a [&'a str],
    pub method: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
}

impl Condition {
    /// Compiles `source`; the error names the mistake, or the variable that does not exist.
    pub(crate) fn compile(source: &str) -> Result<Self, String> {
        let program = ENV
            .compile(source)
            .map_err(|e| format!("not a CEL expression: {e}"))?;
        let references = program.references();
        let variables = references.variables();
        for variable in &variables {
            if !VARIABLES.contains(variable) && !is_loop_variable(source, variable) {
                return Err(format!(
                    "{variable} is not a variable here (there are {})",
                    VARIABLES.join(", ")
                ));
            }
        }
        let reads_user = variables.contains(&"user");
        Ok(Self {
            source: source.to_owned(),
            program: Arc::new(program),
            reads_user,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression may read who the caller is (their groups, their email: `user`).
    pub(crate) fn reads_user(&self) -> bool {
        self.reads_user
    }

    /// Whether the expression is true for `facts`; `Err` says why it could not be run.
    pub(crate) fn holds(&self, facts: &Facts) -> Result<bool, String> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        let groups: Vec<Value> = facts
            .groups
            .iter()
            .map(|g| Value::from(g.as_str()))
            .collect();
        context.add_variable_from_value(
            "user",
            map([
                ("sub", Value::from(facts.sub)),
                ("name", Value::from(facts.name)),
                ("email", Value::from(facts.email)),
                ("groups", Value::from(groups)),
            ]),
        );
        context.add_variable_from_value("client", map([("id", Value::from(facts.client_id))]));
        let scopes: Vec<Value> = facts.scopes.iter().map(|s| Value::from(*s)).collect();
        context.add_variable_from_value("scopes", Value::from(scopes));
        context.add_variable_from_value(
            "mcp",
            map([
                ("method", Value::from(facts.method)),
                ("kind", Value::from(facts.kind)),
                ("name", Value::from(facts.target)),
            ]),
        );
        match self.program.execute(&context) {
            Ok(Value::Bool(holds)) => Ok(holds),
            Ok(other) => Err(format!("it gave {:?}, not true or false", other.type_of())),
            Err(error) => Err(error.to_string()),
        }
    }
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let entries: std::collections::HashMap<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Value::from(entries)
}

/// Whether `name` is bound by a macro (`list.exists(name, …)` and the like) in `source`: CEL's
/// references list those along with the variables.
fn is_loop_variable(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(at, _)| {
        let before = source[..at].trim_end();
        let after = source[at + name.len()..].trim_start();
        before.ends_with('(') && after.starts_with(',')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(groups: &'a [String], scopes: &'a [&'a str]) -> Facts<'a> {
        Facts {
            sub: "ada",
            name: "ada",
            email: "ada@example.com",
            groups,
            client_id: "c1",
            scopes,
            method: "tools/call",
            kind: "tool",
            target: "delete_repo",
        }
    }

    #[test]
    fn an_expression_runs_against_the_call() {
        let admins = vec!["admins".to_owned()];
        let rule = Condition::compile(
            r#""admins" in user.groups && mcp.name.startsWith("delete_") && "mcp" in scopes"#,
        )
        .unwrap();
        assert_eq!(rule.holds(&facts(&admins, &["mcp"])), Ok(true));
        assert_eq!(rule.holds(&facts(&[], &["mcp"])), Ok(false));
        assert!(rule.reads_user());
        let loops =
            Condition::compile(r#"user.groups.exists(g, g.endsWith("-ops")) || client.id == "c1""#)
                .unwrap();
        assert_eq!(loops.holds(&facts(&[], &[])), Ok(true));
    }

    #[test]
    fn mistakes_are_named_when_the_config_is_read() {
        let error = Condition::compile(r#"user.groups.exists(g, g == "a" &&"#).unwrap_err();
        assert!(error.starts_with("not a CEL expression"), "{error}");
        let error = Condition::compile(r#"request.path == "/x""#).unwrap_err();
        assert!(error.contains("request is not a variable"), "{error}");
    }

    #[test]
    fn what_is_not_true_does_not_hold() {
        let not_bool = Condition::compile("mcp.name").unwrap();
        assert!(not_bool.holds(&facts(&[], &[])).is_err());
        let missing = Condition::compile(r#"user.department == "x""#).unwrap();
        assert!(missing.holds(&facts(&[], &[])).is_err());
    }
}
