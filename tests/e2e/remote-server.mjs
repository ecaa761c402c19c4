// A remote MCP server with its own OAuth, as the gateway's connections meet them: a real
// authorization server (npm oidc-provider, with dynamic registration, resource indicators, PKCE,
// refresh tokens, revocation and introspection) and, beside it, an MCP server on the official
// TypeScript SDK behind `requireBearerAuth`, which checks each token by introspection at that server
// and serves its protected resource metadata (RFC 9728).
//
// Usage: node remote-server.mjs '{"asPort": N, "mcpPort": M, "accessTokenTtl": seconds,
//                                  "authServer": "real" | "issuer-mismatch" | "no-pkce" | "no-access-token",
//                                  "resource": "<what its resource metadata names>"}'
// With an `authServer` other than "real", the resource metadata names a stand-in server on the MCP
// port (at /fake-as) that is wrong in that one way: its metadata names another issuer, or offers no
// PKCE with S256, or its token endpoint answers without an access token. `resource` makes the
// resource metadata name another resource than the server.
// The MCP endpoint is http://127.0.0.1:M/mcp; its one tool, `whoami`, answers with the token's
// subject, scopes and a SHA-256 of the token. `GET /_stats` on the MCP port reports the tokens it
// was sent (their hashes), the ones it refused, the clients the authorization server registered,
// how many requests its token endpoint answered, and how many grants a revocation (RFC 7009) ended.
// Its login form takes any login with any password. On the MCP port, `POST /_forget` makes the
// authorization server anew, forgetting its clients, grants and tokens; `POST /_refuse-next` has the
// next token refused as if revoked; `POST /_require-write` requires the scope tracker:write from
// then on.
// Prints "ready" on stderr once both listen.
import crypto from 'node:crypto';
import express from 'express';
import Provider, { errors } from 'oidc-provider';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const plan = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${plan.asPort}`;
const mcpUrl = `http://127.0.0.1:${plan.mcpPort}/mcp`;
const metadataUrl = `http://127.0.0.1:${plan.mcpPort}/.well-known/oauth-protected-resource/mcp`;
const RS_SECRET = 'resource-server-secret-0123456789';
const SCOPES = 'tracker:read tracker:write';
const stats = { seen: [], refused: 0, registered: [], tokenRequests: 0, revoked: 0 };
// The controls: the next token refused as if revoked, and the scopes the MCP endpoint requires.
let refuseNext = false;
let requiredScopes = ['tracker:read'];
const sha = (text) => crypto.createHash('sha256').update(text).digest('hex');

/** The authorization server, made anew by `POST /_forget` (its in-memory state, clients and grants gone). */
const makeProvider = () => new Provider(issuer, {
  clients: [{
    client_id: 'resource-server',
    client_secret: RS_SECRET,
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  }],
  scopes: ['openid', 'offline_access', 'tracker:read', 'tracker:write'],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => mcpUrl,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resource) {
        if (resource !== mcpUrl) throw new errors.InvalidTarget();
        return { scope: SCOPES, accessTokenFormat: 'opaque', audience: mcpUrl };
      },
    },
  },
  pkce: { required: () => true },
  issueRefreshToken: async () => true,
  ttl: { AccessToken: plan.accessTokenTtl ?? 3600, RefreshToken: 86400 },
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(mcpUrl, SCOPES);
    await grant.save();
    return grant;
  },
});
let asServer;
function startAuthServer(then) {
  const provider = makeProvider();
  provider.proxy = false;
  provider.on('grant.success', () => { stats.tokenRequests += 1; });
  provider.on('grant.error', () => { stats.tokenRequests += 1; });
  // A token revoked at the revocation endpoint (RFC 7009) ends its grant.
  provider.on('grant.revoked', () => { stats.revoked += 1; });
  provider.on('registration_create.success', (_ctx, client) => {
    stats.registered.push({ client_id: client.clientId, redirect_uris: client.redirectUris, auth: client.tokenEndpointAuthMethod });
  });
  asServer = provider.listen(plan.asPort, '127.0.0.1', then);
}

/** The token's meaning, from the authorization server's introspection endpoint. */
async function introspect(token) {
  const response = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`resource-server:${RS_SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token }).toString(),
  });
  const info = await response.json();
  stats.seen.push(sha(token));
  if (refuseNext || !info.active || info.aud !== mcpUrl) {
    refuseNext = false;
    stats.refused += 1;
    throw new InvalidTokenError('The token is not active for this server');
  }
  return { token, clientId: info.client_id, scopes: (info.scope ?? '').split(' '), expiresAt: info.exp, resource: new URL(mcpUrl), extra: { sub: info.sub } };
}

const app = express();
app.use(express.json());
const fakeIssuer = `http://127.0.0.1:${plan.mcpPort}/fake-as`;
const kind = plan.authServer ?? 'real';
app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => {
  const servers = kind === 'real' ? [issuer] : [fakeIssuer];
  res.json({ resource: plan.resource ?? mcpUrl, authorization_servers: servers, scopes_supported: ['tracker:read'], resource_name: 'Tracker' });
});
// The stand-in authorization server, wrong in the one way `kind` names.
app.get('/.well-known/oauth-authorization-server/fake-as', (_req, res) => {
  res.json({
    issuer: kind === 'issuer-mismatch' ? issuer : fakeIssuer,
    authorization_endpoint: `${fakeIssuer}/authorize`,
    token_endpoint: `${fakeIssuer}/token`,
    registration_endpoint: `${fakeIssuer}/register`,
    code_challenge_methods_supported: kind === 'no-pkce' ? ['plain'] : ['S256'],
    authorization_response_iss_parameter_supported: true,
  });
});
app.post('/fake-as/register', (req, res) => {
  stats.registered.push({ client_id: 'fake-client', redirect_uris: req.body.redirect_uris, auth: 'none' });
  res.status(201).json({ client_id: 'fake-client', redirect_uris: req.body.redirect_uris, token_endpoint_auth_method: 'none' });
});
app.get('/fake-as/authorize', (req, res) => {
  const back = new URL(req.query.redirect_uri);
  back.searchParams.set('code', 'fake-code');
  back.searchParams.set('state', req.query.state);
  back.searchParams.set('iss', fakeIssuer);
  res.redirect(302, back.href);
});
app.post('/fake-as/token', express.urlencoded({ extended: false }), (_req, res) => {
  res.json({ token_type: 'Bearer', expires_in: 3600 });
});
app.get('/_stats', (_req, res) => res.json(stats));
// The next token is refused as if it had been revoked.
app.post('/_refuse-next', (_req, res) => { refuseNext = true; res.json({}); });
// From now on the endpoint requires tracker:write too: a token without it gets 403 insufficient_scope.
app.post('/_require-write', (_req, res) => { requiredScopes = ['tracker:read', 'tracker:write']; res.json({}); });
// The authorization server forgets everything: its clients, grants and tokens.
app.post('/_forget', (_req, res) => {
  asServer.close(() => startAuthServer(() => res.json({ forgotten: true })));
  asServer.closeAllConnections();
});
// Made for each request, so that the scopes required can change.
const bearer = (req, res, next) => requireBearerAuth({
  verifier: { verifyAccessToken: introspect },
  requiredScopes,
  resourceMetadataUrl: metadataUrl,
  expectedResource: new URL(mcpUrl),
})(req, res, next);
app.all('/mcp', bearer, async (req, res) => {
  const server = new McpServer({ name: 'remote-tracker', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the token belongs to' }, async (extra) => ({
    content: [{ type: 'text', text: JSON.stringify({ sub: extra.authInfo?.extra?.sub, scopes: extra.authInfo?.scopes, token: sha(extra.authInfo?.token ?? '') }) }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

let listening = 0;
const ready = () => { if (++listening === 2) console.error('ready'); };
startAuthServer(ready);
app.listen(plan.mcpPort, '127.0.0.1', ready);
