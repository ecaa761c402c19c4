// An organisation's own authorization server (npm oidc-provider), whose access tokens the gateway
// accepts without an authorization server of its own (`[[issuers]]`): client credentials for a
// machine client, resource indicators (RFC 8707) that make a JWT access token (RFC 9068) for most
// resources and an opaque one for any resource whose path ends in `/opaque`, introspection
// (RFC 7662) for the gateway's client there, and revocation (RFC 7009). With `gatewayIssuer`, it
// also exchanges tokens (RFC 8693, a custom grant type): the gateway's signed assertion, checked
// against the gateway's published keys, for a token of the asked `audience` naming the same user;
// a user in `refuse` gets invalid_grant. `GET /test/exchanges` counts the exchanges made.
// Usage: node external-as.mjs '{"port": N, "machineSecret": "...", "gatewaySecret": "...",
//   "gatewayIssuer": "...", "refuse": ["mallory"]}'
import Provider, { errors } from 'oidc-provider';
import { SignJWT, createRemoteJWKSet, jwtVerify } from 'jose';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const plan = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${plan.port}`;
const provider = new Provider(issuer, {
  scopes: ['mcp', 'files.read'],
  clients: [
    {
      client_id: 'machine',
      client_secret: plan.machineSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'mcp files.read',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // The gateway's own client here: it introspects, and exchanges.
      client_id: 'gateway',
      client_secret: plan.gatewaySecret,
      grant_types: plan.gatewayIssuer ? [TOKEN_EXCHANGE] : [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resource) {
        return {
          scope: 'mcp files.read',
          audience: resource,
          accessTokenFormat: new URL(resource).pathname.endsWith('/opaque') ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: 600 },
});
let exchanges = 0;
if (plan.gatewayIssuer) {
  const gatewayKeys = createRemoteJWKSet(new URL(`${plan.gatewayIssuer}/.well-known/jwks.json`));
  const backendKey = new TextEncoder().encode('the-backends-own-key-0123456789abcdef');
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { subject_token: subjectToken, subject_token_type: subjectType, audience, scope } = ctx.oidc.params;
    if (subjectType !== 'urn:ietf:params:oauth:token-type:jwt') {
      throw new errors.InvalidRequest('this server exchanges the gateway\'s assertions only');
    }
    let user;
    try {
      ({ payload: { sub: user } } = await jwtVerify(subjectToken, gatewayKeys, { issuer: plan.gatewayIssuer }));
    } catch (error) {
      throw new errors.InvalidGrant(`the subject token is not the gateway's: ${error.code ?? error}`);
    }
    if ((plan.refuse ?? []).includes(user)) throw new errors.InvalidGrant(`${user} may no longer use this`);
    exchanges += 1;
    const token = await new SignJWT({ scope, client_id: ctx.oidc.client.clientId, act: { sub: 'gateway' } })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setIssuer(issuer).setSubject(user).setAudience(audience)
      .setIssuedAt().setExpirationTime('10m').setJti(`x-${exchanges}`)
      .sign(backendKey);
    ctx.body = {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 600,
      scope,
    };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'actor_token', 'actor_token_type']);
  provider.use(async (ctx, next) => {
    if (ctx.path === '/test/exchanges') {
      ctx.body = { exchanges };
      return;
    }
    await next();
  });
}
provider.proxy = false;
provider.listen(plan.port, '127.0.0.1', () => console.error(`external authorization server at ${issuer}`));
