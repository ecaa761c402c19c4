// A real OpenID Connect provider (npm oidc-provider) for the gateway's `oidc` tests.
// Usage: node oidc-provider.mjs '{"port": N, "clientId": "...", "clientSecret": "...", "redirectUri": "..."}'
// Its development login form accepts any login with any password; the account's sub is the login,
// its email <login>@example.com (verified), its groups ["staff"] (and "oidc-admins" for alice), in the
// ID token's `groups` claim. With `accountsFile`, a JSON file read at each use, an account listed
// there has the `email` and `groups` it gives instead (`groups: null`: no groups claim at all), so
// that a test can change what the provider says of a user. Grants are created without a consent
// screen.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const plan = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${plan.port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: plan.clientId,
    client_secret: plan.clientSecret,
    redirect_uris: [plan.redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'groups'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  issueRefreshToken: async () => true,
  ttl: { AccessToken: plan.accessTokenTtl ?? 3600, IdToken: 3600 },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        const groups = id === 'alice' ? ['staff', 'oidc-admins'] : ['staff'];
        const claims = { sub: id, email: `${id}@example.com`, email_verified: true, preferred_username: id, groups };
        const today = plan.accountsFile && fs.existsSync(plan.accountsFile)
          ? JSON.parse(fs.readFileSync(plan.accountsFile, 'utf8'))[id]
          : undefined;
        if (today) {
          Object.assign(claims, today);
          if (claims.groups === null) delete claims.groups;
        }
        return claims;
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile offline_access');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
provider.listen(plan.port, '127.0.0.1', () => console.error(`oidc-provider listening at ${issuer}`));
