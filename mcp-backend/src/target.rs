//! The call `make_authenticated_request` makes: `GET <target>?message=…` with the caller's token as
//! `Authorization: Bearer`, and a summary of what the target echoed with every credential masked.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::caller::Token;
use crate::config::TargetSettings;
use crate::mask::{is_credential_header, mask_credential, mask_token};

/// The largest reply read from the target.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// What the target echoed back, safe to show to a model.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EchoSummary {
    /// The URL that was called, without its query.
    pub target: String,
    /// The HTTP status the target answered with.
    #[schemars(schema_with = "http_status")]
    pub status: u16,
    /// The query arguments the target received.
    pub args: BTreeMap<String, Value>,
    /// The request headers the target received; credential values are masked.
    pub headers: BTreeMap<String, Value>,
}

/// An HTTP status as JSON Schema says it: an integer from 100 to 599, with no `format` (schemars
/// would say `uint16`, a format validators do not know, and the TypeScript SDK warns of it).
fn http_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "integer",
        "minimum": 100,
        "maximum": 599,
    })
}

/// Why the call failed, in one line for the tool result.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the target {0} could not be reached")]
    Unreachable(String),
    #[error("the target {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("the target {0} answered HTTP {1}")]
    Status(String, u16),
    #[error("the target {0} answered with something other than a JSON object")]
    NotJson(String),
    #[error("the target {0} answered with more than {MAX_REPLY_BYTES} bytes")]
    TooLarge(String),
}

pub struct Target {
    client: reqwest::Client,
    settings: TargetSettings,
}

impl Target {
    pub fn new(settings: TargetSettings) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("mcp-backend/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            // A redirect would carry the token to wherever the target points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, settings })
    }

    /// The HTTP client, shared with other outbound calls.
    pub fn http_client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// Calls the target with `message` and the token, and summarises its echo.
    pub async fn call(&self, message: &str, token: &Token) -> Result<EchoSummary, TargetError> {
        let mut url = self.settings.url.clone();
        url.query_pairs_mut().append_pair("message", message);
        let shown = {
            let mut u = self.settings.url.clone();
            u.set_query(None);
            u.to_string()
        };
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                TargetError::Timeout(shown.clone(), self.settings.timeout)
            } else {
                TargetError::Unreachable(shown.clone())
            }
        };
        let mut response = self
            .client
            .get(url)
            .bearer_auth(token.secret())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(TargetError::Status(shown, status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_REPLY_BYTES {
                return Err(TargetError::TooLarge(shown));
            }
        }
        let Ok(Value::Object(echo)) = serde_json::from_slice::<Value>(&body) else {
            return Err(TargetError::NotJson(shown));
        };
        Ok(summarise(shown, status.as_u16(), &echo, token))
    }
}

/// Keeps `args` and `headers` of an httpbin-style echo, masks credential headers, and masks any
/// copy of the token that is left anywhere else.
fn summarise(
    target: String,
    status: u16,
    echo: &serde_json::Map<String, Value>,
    token: &Token,
) -> EchoSummary {
    let object = |key: &str| -> BTreeMap<String, Value> {
        echo.get(key)
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let mut args = object("args");
    let mut headers = object("headers");
    for (name, value) in headers.iter_mut() {
        if is_credential_header(name) {
            *value = mask_value(value, mask_credential);
        }
    }
    for value in args.values_mut().chain(headers.values_mut()) {
        scrub(value, token.secret());
    }
    EchoSummary {
        target,
        status,
        args,
        headers,
    }
}

fn mask_value(value: &Value, mask: fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(mask(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_value(v, mask)).collect()),
        _ => Value::String("****".into()),
    }
}

/// Replaces every copy of the token inside `value` with its masked form.
fn scrub(value: &mut Value, token: &str) {
    match value {
        Value::String(s) if s.contains(token) => *s = s.replace(token, &mask_token(token)),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, token)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub(v, token)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_masked_wherever_they_appear() {
        let secret = "sekrit-token-0123456789-abcdef";
        let token = Token::parse(secret).unwrap();
        let echo = json!({
            "args": {"message": "hello", "leak": format!("x{secret}y")},
            "headers": {
                "Authorization": format!("Bearer {secret}"),
                "X-Api-Key": ["one-key-long-enough-to-show", "two"],
                "Accept": "application/json",
                "X-Echo": secret,
            },
            "origin": "127.0.0.1",
        });
        let summary = summarise("http://t/".into(), 200, echo.as_object().unwrap(), &token);
        let text = serde_json::to_string(&summary).unwrap();
        assert!(!text.contains(secret), "{text}");
        assert_eq!(summary.headers["Authorization"], json!("Bearer sekr…cdef"));
        assert_eq!(summary.headers["X-Api-Key"], json!(["one-…show", "****"]));
        assert_eq!(summary.headers["Accept"], json!("application/json"));
        assert_eq!(summary.args["message"], json!("hello"));
    }
}
