//! The Lua scripts that make the store's multi-step operations atomic on Redis. Each touches only
//! keys of one hash slot: its own key, or the grants' keys, which share the `{grants}` tag.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1] the code; ARGV[1] now. Returns `{"taken", body}`, `{"replayed", grant or ""}` or
/// `{"missing", ""}`. A used code is reported as a replay even once expired, as long as it is kept.
pub(super) static TAKE_CODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local code = redis.call('HMGET', KEYS[1], 'body', 'exp', 'used', 'grant')
        if not code[1] then return {'missing', ''} end
        if code[3] == '1' then return {'replayed', code[4] or ''} end
        if tonumber(code[2]) <= tonumber(ARGV[1]) then return {'missing', ''} end
        redis.call('HSET', KEYS[1], 'used', '1')
        return {'taken', code[1]}
        ",
    )
});

/// KEYS[1] the code; ARGV[1] the grant. Records the grant a code was redeemed for.
pub(super) static SET_CODE_GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'grant', ARGV[1]) end
        return 1
        ",
    )
});

/// KEYS[1] the grant; ARGV[1] its body, ARGV[2] whether it is revoked. A revoked grant stays so.
pub(super) static PUT_GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local revoked = redis.call('HGET', KEYS[1], 'revoked')
        if revoked ~= '1' then revoked = ARGV[2] end
        redis.call('HSET', KEYS[1], 'body', ARGV[1], 'revoked', revoked)
        return 1
        ",
    )
});

/// KEYS[1] the grant, KEYS[2] its refresh tokens by expiry, KEYS[3] the plain set of them that
/// versions before the sorted one kept, KEYS[4] the count of revocations; ARGV[1] the refresh
/// tokens' key prefix. Revokes the grant, deletes every refresh token issued under it, and counts
/// the revocation.
pub(super) static REVOKE_GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('HSET', KEYS[1], 'revoked', '1')
        redis.call('INCR', KEYS[4])
        local hashes = redis.call('ZRANGE', KEYS[2], 0, -1)
        for _, hash in ipairs(redis.call('SMEMBERS', KEYS[3])) do table.insert(hashes, hash) end
        for _, hash in ipairs(hashes) do redis.call('DEL', ARGV[1] .. hash) end
        redis.call('DEL', KEYS[2], KEYS[3])
        return 1
        ",
    )
});

/// A Lua function the scripts that issue a refresh token share: `track(grant, hash, exp, now)`
/// adds the token to its grant's tokens, sorted by expiry (ARGV[4] is those sets' key prefix),
/// drops the expired ones, and lets the set expire with its last token, so that a grant refreshed
/// for months keeps only what can still be revoked.
const TRACK: &str = r"
    local function track(grant, hash, exp, now)
        local set = ARGV[4] .. grant
        redis.call('ZADD', set, exp, hash)
        redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
        local last = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
        if last[2] then redis.call('EXPIREAT', set, last[2]) end
    end
";

/// KEYS[1] the token; ARGV[1] its hash, ARGV[2] its grant, ARGV[3] when it expires, ARGV[4] the
/// grants' token sets' key prefix, ARGV[5] now.
pub(super) static PUT_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            TRACK,
            r"
        redis.call('HSET', KEYS[1], 'grant', ARGV[2], 'exp', ARGV[3])
        redis.call('EXPIREAT', KEYS[1], ARGV[3])
        track(ARGV[2], ARGV[1], ARGV[3], ARGV[5])
        return 1
        ",
        ]
        .concat(),
    )
});

/// KEYS[1] the old token, KEYS[2] the new one; ARGV: 1 the new hash, 2 its expiry, 3 now, 4 the
/// grants' token sets' key prefix, 5 the grants' key prefix, 6 the grace in seconds. Rotation by
/// compare-and-swap: returns `{outcome, grant}` with outcome `rotated`, `grace` (rotated moments
/// ago to this same successor), `reused` or `unknown`.
pub(super) static ROTATE_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            TRACK,
            r"
        local now = tonumber(ARGV[3])
        local token = redis.call('HMGET', KEYS[1], 'grant', 'exp', 'rotated_at', 'rotated_to')
        local grant = token[1]
        if not grant or tonumber(token[2]) <= now then return {'unknown', ''} end
        if redis.call('HGET', ARGV[5] .. grant, 'revoked') ~= '0' then return {'unknown', ''} end
        if token[3] then
            if math.max(now - tonumber(token[3]), 0) < tonumber(ARGV[6]) then
                if token[4] == ARGV[1] then return {'grace', grant} end
                return {'unknown', ''}
            end
            return {'reused', grant}
        end
        redis.call('HSET', KEYS[1], 'rotated_at', ARGV[3], 'rotated_to', ARGV[1])
        redis.call('HSET', ARGV[5] .. grant, 'refreshed_at', ARGV[3])
        redis.call('HSET', KEYS[2], 'grant', grant, 'exp', ARGV[2])
        redis.call('EXPIREAT', KEYS[2], ARGV[2])
        track(grant, ARGV[1], ARGV[2], ARGV[3])
        return {'rotated', grant}
        ",
        ]
        .concat(),
    )
});

/// KEYS[1] a lock; ARGV[1] its holder. Deletes it only if that holder still holds it (a lock that
/// expired may be another's by now).
pub(super) static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

/// KEYS[1] a user's connections; ARGV[1] the route, ARGV[2] the `connected_at` of the connection
/// refreshed, ARGV[3] the refreshed body. Writes it only over that same connection: 1, else 0.
pub(super) static REPLACE_CONNECTION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if not current then return 0 end
        if cjson.decode(current)['connected_at'] ~= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        return 1
        ",
    )
});
