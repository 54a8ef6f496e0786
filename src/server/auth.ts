import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { AuthenticationError, PermissionError } from '../errors.js';

/** Who is asking: the tenant whose tries and sessions the request may touch, and whether it holds the admin key. */
export interface Caller {
  tenant: string;
  admin: boolean;
}

export const DEFAULT_TENANT = 'default';

/** Turns an Authorization header into a Caller, or throws the error the client gets. */
export type Authenticate = (authorization: string | undefined) => Caller;

/**
 * Keys are compared as SHA-256 digests: the lookup is by digest, so neither its time nor a short-circuiting string
 * compare says how much of a guessed key was right. With no keys configured, auth is off and everyone is the
 * default tenant with admin rights (a loopback sidecar needs no keys).
 */
export function createAuthenticator(auth: Config['auth']): Authenticate {
  const tenants = new Map<string, string>();
  for (const { key, tenant } of auth.apiKeys) tenants.set(digest(key), tenant);
  if (auth.apiKey) tenants.set(digest(auth.apiKey), DEFAULT_TENANT);
  const admin = auth.adminKey ? Buffer.from(digest(auth.adminKey), 'hex') : null;
  if (!authEnabled(auth)) return () => ({ tenant: DEFAULT_TENANT, admin: true });

  return (authorization) => {
    const key = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!key) {
      throw new AuthenticationError(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      );
    }
    const d = digest(key);
    // The admin key acts as the default tenant on the ordinary routes.
    if (admin && timingSafeEqual(Buffer.from(d, 'hex'), admin)) return { tenant: DEFAULT_TENANT, admin: true };
    const tenant = tenants.get(d);
    if (tenant === undefined) throw new AuthenticationError(`Incorrect API key provided: ${redact(key)}.`);
    return { tenant, admin: false };
  };
}

/** Every tenant a key can name, plus the default one. */
export function tenantNames(auth: Config['auth']): Set<string> {
  return new Set([DEFAULT_TENANT, ...auth.apiKeys.map((k) => k.tenant)]);
}

export function authEnabled(auth: Config['auth']): boolean {
  return auth.apiKeys.length > 0 || auth.apiKey !== null || auth.adminKey !== null;
}

export function requireAdmin(caller: Caller, what: string): void {
  if (!caller.admin) throw new PermissionError(`${what} needs the admin key.`);
}

function digest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What OpenAI shows of a wrong key: enough to recognise it, not enough to use it. */
function redact(key: string): string {
  return key.length <= 8 ? '****' : `${key.slice(0, 3)}****${key.slice(-4)}`;
}
