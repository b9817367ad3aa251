//! Whether this process may stand for election now: an input to the election that something
//! outside it (the application's health check, a supervised child process) sets.
//!
//! While a [`Candidacy`] says no, a follower makes no acquire or takeover attempt (it keeps
//! following the lock, so it still knows the holder), and a leader steps down at once and
//! releases the lock (see [`super::state::Election::withdraw`] for what is released and when).
//! When it says yes again the process stands like a fresh follower. A process given no candidacy
//! ([`Candidacy::always`]) always stands.

use tokio::sync::watch;

/// The election's side: whether this process may stand, and news of a change.
#[derive(Clone, Debug, Default)]
pub struct Candidacy(Option<watch::Receiver<bool>>);

/// The side that decides: tells the election whether this process may stand.
#[derive(Debug)]
pub struct CandidacySender(watch::Sender<bool>);

impl Candidacy {
    /// Always standing: the default when nothing gates candidacy.
    pub fn always() -> Self {
        Self(None)
    }

    /// A candidacy that starts as `may_stand`, and its sender.
    pub fn pair(may_stand: bool) -> (CandidacySender, Candidacy) {
        let (tx, rx) = watch::channel(may_stand);
        (CandidacySender(tx), Candidacy(Some(rx)))
    }

    /// Whether this process may stand now; once the sender is gone, its last word stands.
    pub fn may_stand(&self) -> bool {
        self.0.as_ref().is_none_or(|rx| *rx.borrow())
    }

    /// Completes with the answer when it may have changed (the caller compares with what it
    /// knew); never completes for [`Candidacy::always`] or once the sender is gone.
    pub async fn changed(&mut self) -> bool {
        let Some(rx) = &mut self.0 else {
            return std::future::pending().await;
        };
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        *rx.borrow_and_update()
    }
}

impl CandidacySender {
    /// Lets the process stand (`true`) or withdraws it (`false`); repeating the answer does nothing.
    pub fn set(&self, may_stand: bool) {
        self.0.send_if_modified(|value| {
            let changed = *value != may_stand;
            *value = may_stand;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_change_is_reported_once_and_repeats_are_not() {
        let (tx, mut candidacy) = Candidacy::pair(false);
        assert!(!candidacy.may_stand());
        tx.set(true);
        assert!(candidacy.changed().await);
        assert!(candidacy.may_stand());
        tx.set(true);
        let repeat = tokio::time::timeout(std::time::Duration::from_secs(1), candidacy.changed()).await;
        assert!(repeat.is_err(), "setting the same answer again is no change");
        tx.set(false);
        assert!(!candidacy.changed().await);
    }

    #[tokio::test(start_paused = true)]
    async fn always_stands_and_never_changes() {
        let mut candidacy = Candidacy::always();
        assert!(candidacy.may_stand());
        let change = tokio::time::timeout(std::time::Duration::from_secs(1), candidacy.changed()).await;
        assert!(change.is_err());
    }
}
