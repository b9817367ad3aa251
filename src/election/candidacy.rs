//! Whether this process may stand for election now: an input to the election that something
//! outside it (the application's health check, a supervised child process) sets.
//!
//! While a [`Candidacy`] says no, a follower makes no acquire or takeover attempt (it keeps
//! following the lock, so it still knows the holder), and a leader steps down at once and
//! releases the lock (see [`super::state::Election::set_standing`] for what is released and when).
//! When it says yes again the process stands like a fresh follower. A process given no candidacy
//! ([`Candidacy::always`]) always stands.

use tokio::sync::watch;

/// The election's side: whether this process may stand, and news of a change. Several
/// candidacies combine with [`Candidacy::and`]: the process stands while every one says yes
/// (such as a healthy application *and* a running child process).
#[derive(Clone, Debug, Default)]
pub struct Candidacy(Vec<Source>);

#[derive(Clone, Debug)]
struct Source {
    rx: watch::Receiver<bool>,
    /// The sender is gone: its last word stands, and it brings no more news.
    closed: bool,
}

/// The side that decides: tells the election whether this process may stand.
#[derive(Debug)]
pub struct CandidacySender(watch::Sender<bool>);

impl Candidacy {
    /// Always standing: the default when nothing gates candidacy.
    pub fn always() -> Self {
        Self(Vec::new())
    }

    /// A candidacy that starts as `may_stand`, and its sender.
    pub fn pair(may_stand: bool) -> (CandidacySender, Candidacy) {
        let (tx, rx) = watch::channel(may_stand);
        (CandidacySender(tx), Candidacy(vec![Source { rx, closed: false }]))
    }

    /// Stands only while both `self` and `other` say yes.
    pub fn and(mut self, other: Candidacy) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Whether this process may stand now; a sender that is gone keeps its last word.
    pub fn may_stand(&self) -> bool {
        self.0.iter().all(|source| *source.rx.borrow())
    }

    /// Completes with the answer when it may have changed (the caller compares with what it
    /// knew); never completes for [`Candidacy::always`] or once every sender is gone.
    pub async fn changed(&mut self) -> bool {
        loop {
            let open: Vec<_> = self
                .0
                .iter_mut()
                .enumerate()
                .filter(|(_, source)| !source.closed)
                .map(|(index, source)| Box::pin(async move { (index, source.rx.changed().await.is_ok()) }))
                .collect();
            if open.is_empty() {
                return std::future::pending().await;
            }
            let ((index, news), _, _) = futures::future::select_all(open).await;
            if news {
                self.0[index].rx.borrow_and_update();
                return self.may_stand();
            }
            self.0[index].closed = true;
        }
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
    async fn combined_candidacies_stand_only_while_every_one_says_yes() {
        let (health, health_rx) = Candidacy::pair(true);
        let (child, child_rx) = Candidacy::pair(true);
        let mut candidacy = health_rx.and(child_rx);
        assert!(candidacy.may_stand());
        child.set(false);
        assert!(!candidacy.changed().await);
        health.set(false);
        assert!(!candidacy.changed().await);
        child.set(true);
        assert!(!candidacy.changed().await, "the application is still unhealthy");
        // A sender that is gone keeps its last word and brings no more news.
        drop(child);
        health.set(true);
        assert!(candidacy.changed().await);
        drop(health);
        let change = tokio::time::timeout(std::time::Duration::from_secs(1), candidacy.changed()).await;
        assert!(change.is_err(), "no news once every sender is gone");
        assert!(candidacy.may_stand());
    }

    #[tokio::test(start_paused = true)]
    async fn always_stands_and_never_changes() {
        let mut candidacy = Candidacy::always();
        assert!(candidacy.may_stand());
        let change = tokio::time::timeout(std::time::Duration::from_secs(1), candidacy.changed()).await;
        assert!(change.is_err());
    }
}
