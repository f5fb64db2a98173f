// A real OpenID Connect provider for the single sign-on tests (tests/test_sso.py), on loopback only.
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Anyone may sign in with any name and password (oidc-provider's development interactions): the account id is the
// name typed, and the claims are derived from it (preferred_username = the name, email = name@example.test,
// citytwin_login = the name in capitals, a second claim to map accounts by). Prints "ready" when it listens.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !redirectUri) {
  console.error('usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, email: `${id}@example.test`, citytwin_login: id.toUpperCase() };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'citytwin_login'],
    email: ['email'],
  },
  // The claims go into the ID token too, so that the client needs no second request to read them.
  conformIdTokenClaims: false,
  cookies: { keys: ['citytwin-test-only-cookie-key'] },
  features: { devInteractions: { enabled: true } },
};

const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
