// A real OpenID provider for certfleet's single sign-on tests: panva's oidc-provider (OpenID
// Certified), on loopback, with the built-in login and consent pages (devInteractions: any
// password is accepted) and an in-memory account store whose accounts carry a `groups` claim.
//
// Environment: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI. Prints "ready ISSUER" when it
// accepts connections.
//
// Two test accounts make the provider misbehave on purpose, re-signing their ID token with
// the provider's own key (so only the one broken rule fails): `late` gets an ID token that
// expired an hour ago, `mallory` one whose audience is another client.
import { generateKeyPair, exportJWK, decodeJwt, SignJWT } from "jose";
import Provider from "oidc-provider";

const { PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
const issuer = `http://127.0.0.1:${PORT}`;

const accounts = {
  pat: { email: "pat@example.test", groups: ["staff", "team-payments"] },
  una: { email: "una@example.test", groups: ["staff", "marketing"] },
  late: { email: "late@example.test", groups: ["team-payments"] },
  mallory: { email: "mallory@example.test", groups: ["team-payments"] },
};
const hour = 3600;
const tamper = {
  late: (claims) => ({ iat: claims.iat - 2 * hour, exp: claims.iat - hour }),
  mallory: () => ({ aud: "another-app" }),
};

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: "test-rs256", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  scopes: ["openid", "email", "groups"],
  claims: { openid: ["sub"], email: ["email"], groups: ["groups"] },
  // Put the scope's claims in the ID token itself (certfleet reads groups from it).
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) =>
    accounts[id] && { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) },
  jwks: { keys: [jwk] },
  cookies: { keys: ["certfleet-test-only-cookie-key"] },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== "/token" || !ctx.body || typeof ctx.body.id_token !== "string") return;
  const claims = decodeJwt(ctx.body.id_token);
  const change = tamper[claims.sub];
  if (!change) return;
  ctx.body.id_token = await new SignJWT({ ...claims, ...change(claims) })
    .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
    .sign(privateKey);
});

provider.listen(Number(PORT), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
