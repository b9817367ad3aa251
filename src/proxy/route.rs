//! Where a request goes: the proxy's one decision, a pure function of the published state and
//! the moment of asking.
//!
//! - This process's claim is valid now ([`LeaderState::fencing_token_at`], the same rule as
//!   `/readyz`): pass the request to the local application with that fencing token.
//! - Another process leads and advertises an address, and the request was not forwarded already,
//!   and that address did not just turn the request away: forward it there (one hop).
//! - A forwarded request at a process that will not lead again (shutting down, or withdrawn from
//!   candidacy): turn it away, so the forwarding proxy can place it elsewhere.
//! - Otherwise (no leader, a leader without an address, this process's own claim lapsed or not
//!   yet begun, a forwarded request at a candidate that does not lead now): wait for the state
//!   to change.

use tokio::time::Instant;

use crate::status::LeaderState;

/// What to do with a request now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Pass it to this pod's application, carrying this fencing token.
    Local {
        /// The fencing token of this process's valid claim.
        token: u64,
    },
    /// Forward it to the leader's proxy at this address.
    Forward {
        /// The leader's advertised `HOST:PORT`.
        to: String,
    },
    /// Forwarded here, but this process will not lead again: answer that it is not the leader
    /// (the request reached no application, so the forwarding proxy may place it again).
    NotLeader,
    /// No one can take it now: wait for the published state to change.
    Wait,
}

/// The route of a request at `now`: `forwarded` says it arrived from another replica's proxy
/// (it is never forwarded again); `refused_by` names an address that answered it is not the
/// leader (a request is not sent back there until the state names another).
pub fn route(state: &LeaderState, now: Instant, forwarded: bool, refused_by: Option<&str>) -> Route {
    if let Some(token) = state.fencing_token_at(now) {
        return Route::Local { token };
    }
    if forwarded {
        return if state.shutting_down || !state.candidate {
            Route::NotLeader
        } else {
            Route::Wait
        };
    }
    match (&state.leader, &state.leader_address) {
        (Some(leader), Some(address))
            if *leader != state.identity && refused_by != Some(address.as_str()) =>
        {
            Route::Forward { to: address.clone() }
        }
        _ => Route::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn follower_of(leader: &str, address: Option<&str>) -> LeaderState {
        let mut state = LeaderState::new("me", Instant::now());
        state.leader = Some(leader.into());
        state.leader_address = address.map(str::to_owned);
        state
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_lapsing_between_two_requests_turns_local_into_wait() {
        let now = Instant::now();
        let mut state = follower_of("me", Some("10.0.0.1:8000"));
        state.lead(7, jiff::Timestamp::UNIX_EPOCH, now + Duration::from_secs(2), None);
        assert_eq!(route(&state, now, false, None), Route::Local { token: 7 });
        assert_eq!(
            route(&state, now, true, None),
            Route::Local { token: 7 },
            "forwarded to the leader"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            route(&state, Instant::now(), false, None),
            Route::Wait,
            "the same state, later: the claim has lapsed and the lock still names this process"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_forwards_to_the_advertised_leader_once() {
        let now = Instant::now();
        let state = follower_of("pod-b", Some("10.0.0.2:8000"));
        assert_eq!(
            route(&state, now, false, None),
            Route::Forward {
                to: "10.0.0.2:8000".into()
            }
        );
        assert_eq!(
            route(&state, now, true, None),
            Route::Wait,
            "a forwarded request is never forwarded again"
        );
        assert_eq!(
            route(&state, now, false, Some("10.0.0.2:8000")),
            Route::Wait,
            "not back to the address that turned it away"
        );
        let moved = follower_of("pod-c", Some("10.0.0.3:8000"));
        assert_eq!(
            route(&moved, now, false, Some("10.0.0.2:8000")),
            Route::Forward {
                to: "10.0.0.3:8000".into()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_leader_or_no_address_waits() {
        let now = Instant::now();
        assert_eq!(route(&LeaderState::new("me", now), now, false, None), Route::Wait);
        assert_eq!(route(&follower_of("pod-b", None), now, false, None), Route::Wait);
        let mut shutting = follower_of("me", Some("10.0.0.1:8000"));
        shutting.lead(3, jiff::Timestamp::UNIX_EPOCH, now + Duration::from_secs(5), None);
        shutting.shut_down();
        assert_eq!(
            route(&shutting, now, false, None),
            Route::Wait,
            "a leader that stepped down, its release not yet written, neither serves nor forwards to itself"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_forwarded_request_at_a_process_that_will_not_lead_is_turned_away() {
        let now = Instant::now();
        let candidate = follower_of("pod-b", Some("10.0.0.2:8000"));
        assert_eq!(
            route(&candidate, now, true, None),
            Route::Wait,
            "a candidate may lead soon: the request waits"
        );
        let mut withdrawn = candidate.clone();
        withdrawn.candidate = false;
        assert_eq!(route(&withdrawn, now, true, None), Route::NotLeader);
        assert_eq!(
            route(&withdrawn, now, false, None),
            Route::Forward {
                to: "10.0.0.2:8000".into()
            },
            "its own clients' requests still go to the leader"
        );
        let mut shutting = follower_of("me", Some("10.0.0.1:8000"));
        shutting.lead(3, jiff::Timestamp::UNIX_EPOCH, now + Duration::from_secs(5), None);
        assert_eq!(route(&shutting, now, true, None), Route::Local { token: 3 });
        shutting.shut_down();
        assert_eq!(route(&shutting, now, true, None), Route::NotLeader);
    }
}
