//! Credentials beyond the password login: resume tokens (login 1 with a
//! `token`), changing the password (37), and the revoking logout (3 with
//! `"revoke":true`).
//!
//! # Resume tokens
//!
//! Every successful login ack (2) carries a `token`
//! ([`crate::runtime::token`]): the uid, an expiry (`--token-ttl`) and the
//! account's *token generation*, signed with the server's key. A client
//! that reconnects sends `{"msgId":1,"token":…}` instead of the password:
//!
//! 1. on the peer's own thread, the address's failed-login throttle (as
//!    for a password), then the MAC and the expiry: one HMAC, no hashing;
//! 2. on the user's worker (a store read, never on an I/O thread nor on
//!    the hashing queue), the account's current generation: a token of
//!    another generation was revoked. Then the same claim, load and ack as
//!    a password login ([`account`](super::account) steps 1–3), with a
//!    fresh token.
//!
//! A bad token (garbage, tampered, expired, signed with another key,
//! revoked, or of a deleted account) is answered like a wrong password,
//! errno 1, and counts as a failed login of the address (cluster-wide in
//! cluster mode). It does not count against the account, and the
//! account's failed-login block does not stop a good token: a brute-force
//! run against a password does not lock out its owner's devices.
//!
//! # Revoking
//!
//! A password change and a logout with `"revoke":true` move the account's
//! generation on, so that every token it was handed so far fails. They do
//! not close the account's connections: a session logged in by a token
//! stays connected until it logs out or drops; only its next token login
//! fails.
//!
//! # Threads
//!
//! Every function here is called on the peer's own thread (by
//! `Service::handle`); each says where its work goes.

use std::time::Instant;

use super::account::{self, BAD_LOGIN, STORE_FAILED};
use super::login_limits::{self, AccountKey};
use super::{user_key, Ctx, Me, PendingRequest, Service};
use crate::protocol::{errno, reply};

/// LOGIN_MSG (1) with a resume token; answers 2. See the module docs.
pub fn token_login(ctx: Ctx, token: String) {
    if account::refuse_blocked_address(&ctx) {
        return;
    }
    // A job per request, which the client can repeat: bounded like any
    // request's, checked before the session turns `Verifying`.
    if ctx.refuse_over_request_limit() || !account::begin_verifying(&ctx) {
        return;
    }
    let claims = ctx.svc.token_key().and_then(|key| key.verify(&token));
    // A forged token has no user: its failure is counted on a worker
    // picked by the peer, so one connection's garbage stays on one worker.
    let key = claims.map_or(ctx.peer.id(), |c| user_key(c.uid));
    let pending = PendingRequest::new(&ctx.session);
    let svc = ctx.svc.clone();
    let answer = ctx.clone();
    let refused = svc.workers.try_submit(key, move || {
        let _pending = pending;
        let store = ctx.svc.store.clone();
        let user = match claims.map(|c| (c, store.user_by_id(c.uid))) {
            Some((c, Ok(Some(user)))) if user.token_gen == c.generation => user,
            Some((_, Err(e))) => {
                log::error!("{}: token login: {e}", ctx.peer.name());
                return account::finish_failed_login(ctx, STORE_FAILED);
            }
            _ => {
                count_address_failure(&ctx.svc, ctx.session.address());
                return account::finish_failed_login(ctx, BAD_LOGIN);
            }
        };
        // On the user's worker already, where the claim runs.
        account::claim_cluster_wide(ctx, user);
    });
    if refused.is_err() {
        account::finish_failed_login(
            answer,
            (errno::TOO_MANY, "the server is busy; try again later"),
        );
    }
}

/// In cluster mode, a failed token login counts against the address
/// cluster-wide (this node's count is kept on the I/O thread, by
/// `finish_failed_login`). A worker: it waits for Redis (bounded).
fn count_address_failure(svc: &Service, ip: Option<std::net::IpAddr>) {
    let (Some(shared), Some(ip)) = (svc.shared_throttle(), ip) else {
        return;
    };
    let (_, address_rule) = svc.login_limits().failure_rules;
    if address_rule.limit > 0 {
        let _ = shared.fail(&login_limits::shared_address(ip), address_rule);
    }
}

const WRONG_PASSWORD: account::Failure = (errno::FAILED, "wrong password");

/// CHANGE_PASSWORD_MSG (37): checks `old`, stores the hash of `new` and
/// moves the token generation on; answers 38, on success with a fresh
/// token for this connection. Both hashes run on the hashing threads, as a
/// login's and a register's do, bounded and throttled as a login is: a
/// wrong `old` counts as a failed login of the account and the address.
pub fn change_password(ctx: Ctx, me: Me, old: String, new: String) {
    if account::refuse_blocked_address(&ctx) {
        return;
    }
    let Some(pending) = ctx.reserve_hash() else {
        return;
    };
    ctx.on_hasher(pending, move |ctx, store, pending| {
        let ip = ctx.session.address();
        let key = AccountKey::Id(me.uid);
        if let Some((wait, why)) = account::login_blocked(&ctx.svc, Some(&key), ip) {
            drop(pending);
            return ctx.on_own_loop(move |ctx| ctx.fail_retry(errno::TOO_MANY, why, wait));
        }
        let answer = match store.user_by_id(me.uid) {
            Ok(Some(user)) if ctx.svc.hasher.verify(&old, &user.password_hash) => {
                account::count_login(&ctx.svc, Some(key), ip, false);
                replace_password(&ctx, store, me.uid, &new)
            }
            Ok(_) => {
                account::count_login(&ctx.svc, Some(key), ip, true);
                Err(WRONG_PASSWORD)
            }
            Err(e) => {
                log::error!("{}: change password: {e}", ctx.peer.name());
                Err(STORE_FAILED)
            }
        };
        drop(pending);
        ctx.on_own_loop(move |ctx| match answer {
            Ok(ack) => ctx.send(&ack),
            Err(failure) => {
                if failure == WRONG_PASSWORD {
                    if let Some(ip) = ctx.session.address() {
                        let failures = &ctx.svc.login_limits().address_failures;
                        let _ = failures.lock().hit(ip, Instant::now());
                    }
                }
                ctx.fail(failure.0, failure.1)
            }
        });
    });
}

/// The hashing thread, once `old` was right: hashes `new`, stores it (which
/// revokes every token), and builds the ack with a token of the new
/// generation.
fn replace_password(
    ctx: &Ctx,
    store: &dyn crate::storage::Store,
    uid: i64,
    new: &str,
) -> Result<serde_json::Value, account::Failure> {
    let failed = |e: &dyn std::fmt::Display| {
        log::error!("{}: change password of {uid}: {e}", ctx.peer.name());
        STORE_FAILED
    };
    let hash = ctx.svc.hasher.hash(new).map_err(|e| failed(&e))?;
    match store.set_password(uid, &hash) {
        Ok(true) => {}
        Ok(false) => return Err((errno::NOT_FOUND, "the account no longer exists")),
        Err(e) => return Err(failed(&e)),
    }
    // Read back: another revoke may have moved the generation on meanwhile.
    let token = match store.user_by_id(uid) {
        Ok(Some(user)) => ctx.svc.issue_token(uid, user.token_gen),
        _ => None,
    };
    Ok(reply::with_token(reply::password_changed(), token))
}

/// LOGOUT_MSG (3); with `revoke`, first moves the account's token
/// generation on, on the user's worker, and logs out once that is stored
/// (a store failure answers errno 9 and the connection stays logged in).
pub fn logout(ctx: Ctx, me: Me, revoke: bool) {
    if !revoke {
        return account::logout(ctx, me);
    }
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.revoke_tokens(me.uid) {
            Ok(_) => ctx.on_own_loop(move |ctx| account::logout(ctx, me)),
            Err(e) => ctx.store_failed(&e),
        }
    });
}
