/**
 * In-memory storage adapter for oidc-provider, one store per authorization server instance.
 *
 * oidc-provider's built-in memory adapter logs a production warning on every start, so the test
 * server brings its own. Entries live in a `Map` and expire after the `expiresIn` seconds that
 * oidc-provider passes to `upsert`. Expired entries are dropped when they are next read, so
 * memory is only reclaimed by reads or by discarding the whole store with its server.
 */

// Models whose entries belong to a grant and are removed by `revokeByGrantId`.
const GRANT_MEMBER_MODELS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/**
 * Creates the `adapter` factory for one oidc-provider instance. oidc-provider calls the factory
 * once per model name and gets an object with the adapter methods it expects.
 *
 * @returns {(model: string) => object}
 */
export function createMemoryAdapterFactory() {
  const entries = new Map();
  const grantMembers = new Map();
  const sessionKeyByUid = new Map();
  const entryKeyByUserCode = new Map();

  function readEntry(key) {
    const entry = entries.get(key);
    if (entry === undefined) {
      return undefined;
    }
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      removeEntry(key);
      return undefined;
    }
    return entry;
  }

  function removeEntry(key) {
    const entry = entries.get(key);
    if (entry === undefined) {
      return;
    }
    entries.delete(key);

    const { grantId, uid, userCode } = entry.payload;
    if (grantId !== undefined) {
      grantMembers.get(grantId)?.delete(key);
    }
    if (uid !== undefined && sessionKeyByUid.get(uid) === key) {
      sessionKeyByUid.delete(uid);
    }
    if (userCode !== undefined && entryKeyByUserCode.get(userCode) === key) {
      entryKeyByUserCode.delete(userCode);
    }
  }

  return (model) => {
    const keyFor = (id) => `${model}:${id}`;

    return {
      async upsert(id, payload, expiresIn) {
        const key = keyFor(id);
        removeEntry(key);

        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
        entries.set(key, { payload: structuredClone(payload), expiresAt });

        if (model === 'Session' && payload.uid !== undefined) {
          sessionKeyByUid.set(payload.uid, key);
        }
        if (payload.userCode !== undefined) {
          entryKeyByUserCode.set(payload.userCode, key);
        }
        if (GRANT_MEMBER_MODELS.has(model) && payload.grantId !== undefined) {
          if (!grantMembers.has(payload.grantId)) {
            grantMembers.set(payload.grantId, new Set());
          }
          grantMembers.get(payload.grantId).add(key);
        }
      },

      async find(id) {
        const entry = readEntry(keyFor(id));
        return entry === undefined ? undefined : structuredClone(entry.payload);
      },

      async findByUid(uid) {
        const key = sessionKeyByUid.get(uid);
        const entry = key === undefined ? undefined : readEntry(key);
        return entry === undefined ? undefined : structuredClone(entry.payload);
      },

      async findByUserCode(userCode) {
        const key = entryKeyByUserCode.get(userCode);
        const entry = key === undefined ? undefined : readEntry(key);
        return entry === undefined ? undefined : structuredClone(entry.payload);
      },

      async consume(id) {
        const entry = readEntry(keyFor(id));
        if (entry !== undefined) {
          entry.payload.consumed = Math.floor(Date.now() / 1000);
        }
      },

      async destroy(id) {
        removeEntry(keyFor(id));
      },

      async revokeByGrantId(grantId) {
        const members = grantMembers.get(grantId);
        if (members === undefined) {
          return;
        }
        for (const key of [...members]) {
          removeEntry(key);
        }
        grantMembers.delete(grantId);
      },
    };
  };
}
