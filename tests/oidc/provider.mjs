// A real OpenID provider for Reitti's tests: node_modules/oidc-provider (a certified implementation),
// on 127.0.0.1. Started by tests/oidc_provider.py with:
//   PORT              the port to listen on (the issuer is http://127.0.0.1:PORT)
//   REITTI_BASE_URL   where the Reitti under test serves: its callback and post-logout page are registered
//   SIGNING_JWK       optional: the private RS256 key (a JWK, JSON) the provider signs with; the tests
//                     pass one so that they can also sign tokens the provider would never issue
// It prints "ready <issuer>" on stdout once it listens.
//
// Sign-in uses oidc-provider's development login form: any password is accepted for the logins below,
// whose claims the ID token carries. Integrations get JWT access tokens for the resource urn:reitti:api
// by the client credentials grant.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const base = process.env.REITTI_BASE_URL;
if (!port || !base) {
  console.error('set PORT and REITTI_BASE_URL');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const API = 'urn:reitti:api';

// The test users: a login name and the claims their ID token carries. The mapping the tests give
// Reitti (tests/oidc/claims.yaml) turns these groups into Reitti's roles.
const USERS = {
  kaisa: { name: 'Kaisa Koutsi', groups: ['staff', 'reitti-coaches-244'] },
  aino: { name: 'Aino Auditoija', groups: ['reitti-auditors'] },
  pekka: { name: 'Pekka Pääkäyttäjä', groups: ['reitti-admins'] },
  olli: { name: 'Olli OEO', groups: ['staff', 'reitti-oeo-experts'] },
  // a member of the municipality's staff whom the mapping does not name
  ville: { name: 'Ville Vieras', groups: ['staff'] },
  // two groups that map to different roles: refused rather than guessed
  kaksi: { name: 'Kaksi Roolia', groups: ['reitti-auditors', 'reitti-admins'] },
};

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'provider-key-1', use: 'sig', alg: 'RS256' };
}
const signingKey = process.env.SIGNING_JWK ? JSON.parse(process.env.SIGNING_JWK) : newKey();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'reitti',
      client_secret: 'reitti-test-secret',
      redirect_uris: [`${base}/ui/sso/callback`],
      post_logout_redirect_uris: [`${base}/ui/login?out`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    // an integration the mapping names (client name "ura"), and one it does not
    ...['ura', 'stranger'].map((id) => ({
      client_id: id,
      client_secret: `${id}-test-secret`,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })),
  ],
  jwks: { keys: [signingKey] },
  claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
  // The groups go into the ID token itself: Reitti reads them there, not from the userinfo endpoint.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['reitti-test-cookie-key'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== API) throw new Provider.errors.InvalidTarget();
        return { scope: 'events', audience: API, accessTokenFormat: 'jwt', accessTokenTTL: 300 };
      },
    },
  },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...user }) };
  },
  // Reitti is a first-party client: its users are not asked to consent to their own employer's app.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile groups');
    await grant.save();
    return grant;
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
