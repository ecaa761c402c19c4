// A headless user agent standing in for the browser in the OAuth flows: it follows redirects, keeps
// cookies per host, fills in the gateway's login and consent forms (and an upstream provider's own
// sign-in form), and stops at the app's redirect URI. Shared by the flows in this folder.

/**
 * A fetch that sends what is addressed to `plan.publicUrl` to each of `plan.replicas` (origins) in
 * turn, as a load balancer in front of replicas would; any other request goes where it is addressed.
 * Without replicas, fetch itself.
 */
export function balancedFetch(plan) {
  if (!plan.replicas?.length) return fetch;
  let next = 0;
  return (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(plan.publicUrl)) return fetch(input, init);
    const replica = plan.replicas[next++ % plan.replicas.length];
    const moved = replica + url.slice(plan.publicUrl.length);
    return input instanceof Request ? fetch(new Request(moved, input), init) : fetch(moved, init);
  };
}

/**
 * A user agent for `plan` (`username`, `password`, `consent`: approve | deny) that stops at
 * `redirect`, recording each page it visits in `report.pages`.
 */
export function userAgentFor(plan, redirect, report) {
  const fetch = balancedFetch(plan);
  /** A cookie jar keyed by host, ignoring Secure (the test runs over loopback http, as browsers allow). */
  const jar = new Map();
  function storeCookies(url, response) {
    const host = new URL(url).host;
    const cookies = jar.get(host) ?? new Map();
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, ...rest] = pair.split('=');
      const value = rest.join('=');
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === '';
      if (expired) cookies.delete(name.trim());
      else cookies.set(name.trim(), value);
    }
    jar.set(host, cookies);
  }
  function cookieHeader(url) {
    const cookies = jar.get(new URL(url).host);
    return cookies ? [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  /** The first form of a page: its action and every named input's value. */
  function parseForm(html, base) {
    const form = html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
    if (!form) return null;
    const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const fields = {};
    for (const input of form[2].matchAll(/<input([^>]*)>/gi)) {
      const name = input[1].match(/name="([^"]*)"/);
      const value = input[1].match(/value="([^"]*)"/);
      if (name) fields[unescape(name[1])] = value ? unescape(value[1]) : '';
    }
    return { action: new URL(unescape(form[1]), base).href, fields, html };
  }

  /** Drives the authorization from `start` to the app's redirect URI; returns its query parameters. */
  return async function userAgent(start) {
    let url = start;
    let request = { method: 'GET' };
    for (let hop = 0; hop < 20; hop++) {
      if (url.startsWith(redirect)) return Object.fromEntries(new URL(url).searchParams);
      const response = await fetch(url, {
        ...request,
        redirect: 'manual',
        headers: { ...(request.headers ?? {}), cookie: cookieHeader(url) },
      });
      storeCookies(url, response);
      const page = { path: new URL(url).pathname, status: response.status, frameOptions: response.headers.get('x-frame-options'), csp: response.headers.get('content-security-policy') };
      report.pages.push(page);
      if (response.status >= 300 && response.status < 400) {
        url = new URL(response.headers.get('location'), url).href;
        request = { method: 'GET' };
        continue;
      }
      const html = await response.text();
      const form = parseForm(html, url);
      if (!form) throw new Error(`stuck at ${url} (${response.status}): ${html.slice(0, 300)}`);
      const fields = { ...form.fields };
      if ('username' in fields) {
        fields.username = plan.username;
        fields.password = plan.password;
        page.form = 'login';
      } else if ('login' in fields) {
        // An upstream OpenID provider's own sign-in form.
        fields.login = plan.username;
        fields.password = plan.password;
        page.form = 'upstream-login';
      } else {
        fields.decision = plan.consent ?? 'approve';
        // The gateway's consent, or another server's own (a backend's, when the user connects).
        page.form = new URL(url).host === new URL(start).host ? 'consent' : 'upstream-consent';
        page.text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
      }
      url = form.action;
      request = {
        method: 'POST',
        body: new URLSearchParams(fields).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      };
    }
    throw new Error('too many redirects');
  };
}
