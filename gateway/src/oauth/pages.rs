//! The server-rendered pages: login, consent and errors. Every value is HTML-escaped; every page forbids
//! framing (clickjacking) and caching.

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS,
};

use super::Response;
use super::redirect::Destination;
use super::response::{self, WithHeader as _};

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page; `body` is trusted HTML that the caller built from escaped values.
pub(super) fn page(status: u16, title: &str, body: &str) -> Response {
    page_with_form_target(status, title, body, None)
}

/// A page whose form may end up at `form_target` (a redirect URI): browsers apply CSP `form-action` to
/// where a form submission is redirected, so the client's redirect must be allowed along with 'self'.
pub(super) fn page_with_form_target(
    status: u16,
    title: &str,
    body: &str,
    form_target: Option<&str>,
) -> Response {
    let form_action = match form_target.and_then(csp_source) {
        Some(source) => format!("'self' {source}"),
        None => "'self'".to_owned(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'"
    );
    response::with_status(status, html.into())
        .with_header(CONTENT_TYPE, "text/html; charset=utf-8")
        .with_header(CACHE_CONTROL, "no-store")
        .with_header(X_FRAME_OPTIONS, "DENY")
        .with_header(CONTENT_SECURITY_POLICY, &csp)
        .with_header(REFERRER_POLICY, "no-referrer")
}

/// The CSP source expression for a redirect URI: its origin, or its scheme for an app's own scheme.
fn csp_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()).filter(|o| o != "null"),
        scheme => Some(format!("{scheme}:")),
    }
}

/// An error shown to the user, for when there is no client redirect that may be trusted with it.
pub(super) fn error_page(status: u16, message: &str) -> Response {
    page(
        status,
        "Authorization failed",
        &format!(
            "<h1>Authorization failed</h1><p class=\"error\">{}</p>",
            escape(message)
        ),
    )
}

pub(super) fn login_page(
    pending_id: &str,
    csrf: &str,
    client: &str,
    redirect_uri: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    page_with_form_target(
        if error.is_empty() { 200 } else { 401 },
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error}\
             <form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Username <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Sign in</button></form>",
            client = escape(client),
            pending = escape(pending_id),
            csrf = escape(csrf),
        ),
        Some(redirect_uri),
    )
}

pub(super) struct ConsentView<'a> {
    pub pending_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    /// Where the browser is sent after the decision.
    pub destination: Destination,
    pub scopes: &'a [&'a str],
    pub resource: &'a str,
    pub resource_name: &'a str,
    pub user: &'a str,
    pub redirect_uri: &'a str,
    /// A caution shown above the buttons.
    pub warning: Option<&'a str>,
}

pub(super) fn consent_page(view: &ConsentView) -> Response {
    let scopes: String = view
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    page_with_form_target(
        200,
        "Allow access?",
        &format!(
            "<h1>Allow access?</h1>\
             <p><strong>{client}</strong> <small>({client_id})</small> wants to use <strong>{resource_name}</strong> \
             (<code>{resource}</code>) as <strong>{user}</strong>.</p>\
             <p>{destination}</p>\
             <p>It asks for these scopes:</p><ul>{scopes}</ul>{warning}\
             <form method=\"post\" action=\"/consent\">\
             <input type=\"hidden\" name=\"pending\" value=\"{pending}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
            client = escape(view.client_name),
            client_id = escape(view.client_id),
            resource_name = escape(view.resource_name),
            resource = escape(view.resource),
            user = escape(view.user),
            warning = view
                .warning
                .map(|w| format!("<p class=\"error\">{}</p>", escape(w)))
                .unwrap_or_default(),
            destination = destination_text(&view.destination, view.client_name),
            pending = escape(view.pending_id),
            csrf = escape(view.csrf),
        ),
        Some(view.redirect_uri),
    )
}

/// Where the answer goes, said plainly: a site by its host; an app by its whole redirect URI, since
/// any app on the device may have claimed that scheme.
fn destination_text(destination: &Destination, client: &str) -> String {
    match destination {
        Destination::Host(host) => format!(
            "After you decide, you will be sent to <strong>{}</strong>. Allow only if you trust that site.",
            escape(host)
        ),
        Destination::App(uri) => format!(
            "After you decide, the answer goes to an app on this device, at <strong><code>{}</code></strong>. \
             Any app can claim that address: allow only if you started {} yourself.",
            escape(uri),
            escape(client)
        ),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.5rem;\
box-sizing:border-box;margin-top:.3rem}button{padding:.6rem 1.2rem;margin-top:1rem;border:0;border-radius:4px;\
background:#2456d3;color:#fff;font-size:1rem;cursor:pointer}button.secondary{background:#666}\
.error{color:#b00020}code{background:#eef;padding:0 .2rem}small{color:#555}h2{font-size:1.1rem;margin-top:1.5rem}\
ul.items{list-style:none;padding:0}ul.items li{border-top:1px solid #ddd;padding:.6rem 0}\
ul.items button{margin-top:.4rem;padding:.3rem .8rem;font-size:.9rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_framing_is_forbidden() {
        let page = login_page(
            "p\"><script>",
            "c",
            "<img src=x onerror=alert(1)>",
            "http://127.0.0.1:5/cb",
            None,
        );
        let html = String::from_utf8(page.body().to_vec()).unwrap();
        assert!(!html.contains("<script>") && !html.contains("<img"));
        assert!(page.headers()[X_FRAME_OPTIONS] == "DENY");
        assert!(
            page.headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }

    #[test]
    fn an_app_redirect_is_shown_whole_and_allowed_as_a_form_target() {
        let uri = "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback";
        let page = consent_page(&ConsentView {
            pending_id: "p",
            csrf: "c",
            client_name: "Cursor",
            client_id: "id",
            destination: Destination::App(uri.into()),
            scopes: &["mcp"],
            resource: "http://gw/mcp",
            resource_name: "MCP",
            user: "alice",
            redirect_uri: uri,
            warning: None,
        });
        let html = String::from_utf8(page.body().to_vec()).unwrap();
        assert!(html.contains(&format!("<code>{uri}</code>")), "{html}");
        assert!(html.contains("started Cursor yourself"), "{html}");
        assert!(
            page.headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("form-action 'self' cursor:;"),
            "{:?}",
            page.headers()
        );
    }
}
