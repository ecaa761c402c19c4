// An organisation's own authorization server (npm oidc-provider), whose access tokens the gateway
// accepts without an authorization server of its own (`[[issuers]]`): client credentials for a
// machine client, resource indicators (RFC 8707) that make a JWT access token (RFC 9068) for most
// resources and an opaque one for any resource whose path ends in `/opaque`, introspection
// (RFC 7662) for the gateway's client there, and revocation (RFC 7009).
// Usage: node external-as.mjs '{"port": N, "machineSecret": "...", "gatewaySecret": "..."}'
import Provider from 'oidc-provider';

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
      // The gateway's own client here: it only introspects.
      client_id: 'gateway',
      client_secret: plan.gatewaySecret,
      grant_types: [],
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
provider.proxy = false;
provider.listen(plan.port, '127.0.0.1', () => console.error(`external authorization server at ${issuer}`));
