// The app's side of the official TypeScript SDK's OAuth client (its `OAuthClientProvider`), as the
// flows in this folder play it: what it registers and receives kept in memory, and the browser's
// part of each sign-in carried out by `authorize` (the headless user agent of `user-agent.mjs`).

export class AppProvider {
  /**
   * `name` and `redirect`: the app as it registers; `metadata`: more of its client metadata;
   * `authorize(url)`: carries the authorization request to the app's redirect, returning its query;
   * `onClient`, `onTokens`: told what is saved; `invalidates`: whether credentials the server
   * refuses are dropped (as apps do, so that the SDK signs in again).
   */
  constructor({ name, redirect, metadata = {}, authorize, onClient, onTokens, invalidates = true }) {
    this.options = { name, redirect, metadata, authorize, onClient, onTokens };
    this.redirected = null;
    if (invalidates) {
      this.invalidateCredentials = (scope) => {
        if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
        if (scope === 'all' || scope === 'client') this._client = undefined;
        if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
      };
    }
  }
  get redirectUrl() { return this.options.redirect; }
  get clientMetadata() {
    return {
      client_name: this.options.name,
      redirect_uris: [this.options.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.options.metadata,
    };
  }
  state() { return (this._state = `state-${Math.random().toString(36).slice(2)}`); }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; this.options.onClient?.(info); }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.options.onTokens?.(tokens); }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(url) {
    this.redirected = await this.options.authorize(url);
  }
}
