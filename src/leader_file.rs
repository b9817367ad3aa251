//! The leader file: a file that exists only while this process is leader (supporttools
//! leader-elector compatible, e.g. `/tmp/leader_status`), and that says itself until when it
//! may be believed.
//!
//! ```text
//! app-7d9c-x2k
//! fencing_token=7
//! valid_until=2026-11-21T19:30:12.118272Z
//! ```
//!
//! The first line is the leader's identity alone, so supporttools-style readers keep working
//! (`[ -f /tmp/leader_status ]`, `[ "$(head -n1 /tmp/leader_status)" = "$HOSTNAME" ]`). Then the
//! fencing token, and the claim's validity deadline on the wall clock (RFC 3339, UTC), rewritten
//! with every renewal. A file left behind by an elector that was killed (SIGKILL, OOM, a panic)
//! still names this pod, but its `valid_until` passes within a renew deadline: a reader that
//! compares it with the clock can tell. The deadline is converted from the monotonic one when the
//! file is written (wall clock now + time left), so a wall-clock step afterwards shifts it.
//!
//! It is written atomically: a temporary file with a random name in the same directory, created
//! exclusively (`O_CREAT | O_EXCL`) and without following symbolic links (`O_NOFOLLOW`), then
//! renamed over the path; a reader sees either no file or a whole one, and a link planted in the
//! directory cannot redirect the write. It is removed when leadership ends, when the claim's validity deadline passes (a timer
//! at `valid_until`, so a starved election loop cannot leave a stale file behind), when the
//! election loop goes away, on shutdown, and at start-up (a file left by a killed predecessor must
//! not claim leadership). Failures are logged and retried; they never stop the sidecar.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

use crate::clock::{WallClock, later};
use crate::status::{LeaderState, StateReceiver};

/// How soon a failed write or removal is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why the leader file could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The leader file could not be written (atomically replaced) while this process leads.
    #[error(
        "cannot write the leader file {path}: {source}; make sure its directory exists and is writable \
         (e.g. an emptyDir volume) or change --leader-file"
    )]
    Write {
        /// The leader file's path, as configured.
        path: PathBuf,
        /// The I/O error from creating, writing or renaming the temporary file.
        #[source]
        source: std::io::Error,
    },
    /// The leader file could not be removed while this process does not lead.
    #[error("cannot remove the leader file {path}: {source}; check the directory's permissions")]
    Remove {
        /// The leader file's path, as configured.
        path: PathBuf,
        /// The I/O error from the removal.
        #[source]
        source: std::io::Error,
    },
}

/// What the file says while this process leads: identity, token, wall-clock deadline.
pub fn contents(identity: &str, fencing_token: Option<u64>, valid_until: Timestamp) -> String {
    let mut out = format!("{identity}\n");
    if let Some(token) = fencing_token {
        out.push_str(&format!("fencing_token={token}\n"));
    }
    out.push_str(&format!("valid_until={valid_until}\n"));
    out
}

/// The wall-clock time at which a claim valid until `valid_until` (monotonic) ends, judged at
/// `now` / `wall_now`. Saturating: a deadline beyond the wall clock's range is its maximum.
pub fn wall_deadline(valid_until: Instant, now: Instant, wall_now: Timestamp) -> Timestamp {
    let left = valid_until.saturating_duration_since(now);
    SignedDuration::try_from(left)
        .ok()
        .and_then(|left| wall_now.checked_add(left).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Writes `contents` to `path` atomically: a new, randomly named temporary file in the same
/// directory, created exclusively and without following links, then a rename.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), Error> {
    let error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = temp_path(path);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(&temp);
    let mut file = match created {
        Ok(file) => file,
        // Nothing was created: there is nothing of ours to clean up.
        Err(source) => return Err(error(source)),
    };
    let written = file.write_all(contents.as_bytes());
    drop(file);
    if let Err(source) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(error(source));
    }
    Ok(())
}

/// Removes `path`; a file that is already gone is fine.
pub fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `dir/.name.tmp-<random>`: hidden, next to the target so the rename stays on one filesystem,
/// and unguessable, so nobody can prepare the name in advance.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "leader".to_owned());
    path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()))
}

/// What the file states while leading; it is rewritten when any of it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    identity: String,
    fencing_token: Option<u64>,
    /// The claim's monotonic deadline; the wall-clock one is derived from it when writing.
    valid_until: Instant,
}

/// What is on disk, as far as this process knows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OnDisk {
    Unknown,
    Absent,
    Present(Entry),
}

/// Brings the file to `want` (present with that entry, or absent). Returns whether it is.
fn reconcile(path: &Path, on_disk: &mut OnDisk, want: Option<&Entry>, wall: &WallClock) -> bool {
    let target = want.map_or(OnDisk::Absent, |entry| OnDisk::Present(entry.clone()));
    if *on_disk == target {
        return true;
    }
    let result = match want {
        Some(entry) => {
            let valid_until = wall_deadline(entry.valid_until, Instant::now(), wall.now());
            write_atomic(path, &contents(&entry.identity, entry.fencing_token, valid_until))
        }
        None => remove(path),
    };
    match result {
        Ok(()) => {
            match want {
                Some(_) if matches!(on_disk, OnDisk::Present(_)) => {
                    tracing::debug!(path = %path.display(), "leader file renewed")
                }
                Some(_) => tracing::info!(path = %path.display(), "leader file written"),
                None if *on_disk != OnDisk::Unknown => {
                    tracing::info!(path = %path.display(), "leader file removed")
                }
                None => {}
            }
            *on_disk = target;
            true
        }
        Err(error) => {
            tracing::warn!(%error, retry_in_ms = RETRY_AFTER.as_millis() as u64, "leader file not up to date");
            false
        }
    }
}

/// What the file should hold for `state` at `now`; its `valid_until` is when that ends.
fn wanted(state: &LeaderState, now: Instant) -> Option<Entry> {
    match state.valid_until {
        Some(valid_until) if state.is_leader_at(now) => Some(Entry {
            identity: state.identity.clone(),
            fencing_token: state.fencing_token,
            valid_until,
        }),
        _ => None,
    }
}

/// Keeps the leader file at `path` in step with the published state until `shutdown` completes
/// (or the election loop drops its sender), then removes it.
pub async fn run(path: PathBuf, state: StateReceiver, shutdown: impl Future<Output = ()>) {
    run_with_clock(path, state, WallClock::system(), shutdown).await
}

/// [`run`] with the wall clock that dates `valid_until` given (tests fix it).
pub async fn run_with_clock(
    path: PathBuf,
    state: StateReceiver,
    wall: WallClock,
    shutdown: impl Future<Output = ()>,
) {
    run_reporting(path, state, wall, shutdown, None).await
}

/// [`run_with_clock`] that also publishes on `may_say_leader` whether the file may still name
/// this process (written, or not known to be absent): false only once it is known to be gone.
/// A release after a step-down waits for it (see `election::Settings::step_down_gate`).
pub async fn run_reporting(
    path: PathBuf,
    mut state: StateReceiver,
    wall: WallClock,
    shutdown: impl Future<Output = ()>,
    may_say_leader: Option<tokio::sync::watch::Sender<bool>>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut on_disk = OnDisk::Unknown;
    loop {
        let now = Instant::now();
        let want = wanted(&state.borrow_and_update(), now);
        let deadline = want.as_ref().map(|entry| entry.valid_until);
        let settled = reconcile(&path, &mut on_disk, want.as_ref(), &wall);
        if let Some(flag) = &may_say_leader {
            flag.send_if_modified(|value| {
                let now = on_disk != OnDisk::Absent;
                std::mem::replace(value, now) != now
            });
        }
        let retry = (!settled).then(|| later(now, RETRY_AFTER));
        let wake = match (deadline, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            changed = state.changed() => {
                if changed.is_err() {
                    tracing::debug!("the election loop has stopped; removing the leader file");
                    break;
                }
            }
            () = sleep_until_some(wake) => {}
        }
    }
    // Removal at exit: try a few times, a shutdown must not leave a stale claim behind lightly.
    for attempt in 0..3 {
        if reconcile(&path, &mut on_disk, None, &wall) {
            return;
        }
        if attempt < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StateSender;

    /// A directory removed at the end of the test.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("kube-elector-leader-file-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn lead(tx: &StateSender, valid_for: Duration) {
        let now = Instant::now();
        tx.send_modify(|state| {
            state.set_claims_leadership(true);
            state.leader = Some(state.identity.clone());
            state.fencing_token = Some(1);
            state.valid_until = Some(now + valid_for);
        });
    }

    fn follow(tx: &StateSender) {
        tx.send_modify(|state| {
            state.set_claims_leadership(false);
            state.leader = Some("pod-b".into());
            state.valid_until = None;
        });
    }

    /// Lets the task run until `condition` holds, without moving the (paused) clock. The file
    /// operations are synchronous, so a handful of yields suffices; 10 000 is a generous bound.
    async fn until(what: &str, condition: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if condition() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("expected {what}, but it did not happen");
    }

    /// Yields enough for the task to act on anything it would act on, then checks `condition` still holds.
    async fn stays(what: &str, condition: impl Fn() -> bool) {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(condition(), "expected {what} to hold");
    }

    fn content(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".tmp-"))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn file_follows_leadership_and_is_removed_on_shutdown() {
        let dir = TempDir::new("follows");
        let path = dir.0.join("leader_status");
        let (tx, rx) = crate::status::channel("pod-a");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(path.clone(), rx, async move {
            let _ = stop_rx.await;
        }));

        stays("no file before leadership", || !path.exists()).await;
        lead(&tx, Duration::from_secs(10));
        until("the file to appear with the identity on its first line", || {
            content(&path).is_some_and(|text| text.lines().next() == Some("pod-a"))
        })
        .await;
        follow(&tx);
        until("the file to disappear when leadership ends", || !path.exists()).await;
        lead(&tx, Duration::from_secs(10));
        until("the file to reappear", || path.exists()).await;

        stop_tx.send(()).unwrap();
        task.await.unwrap();
        assert!(!path.exists(), "the file must be removed on shutdown");
        assert_eq!(
            leftovers(&dir.0),
            Vec::<String>::new(),
            "no temporary files left behind"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_says_leader_until_the_file_is_known_to_be_gone() {
        let dir = TempDir::new("reporting");
        let path = dir.0.join("leader_status");
        // A file left by a previous process: until it is removed it may still say leader.
        std::fs::write(&path, "pod-a\n").unwrap();
        let (tx, rx) = crate::status::channel("pod-a");
        let (flag_tx, flag) = tokio::sync::watch::channel(true);
        let _task = tokio::spawn(run_reporting(
            path.clone(),
            rx,
            WallClock::system(),
            std::future::pending(),
            Some(flag_tx),
        ));
        until("the stale file removed and the report false", || {
            !path.exists() && !*flag.borrow()
        })
        .await;
        lead(&tx, Duration::from_secs(10));
        until("the file written and the report true", || {
            path.exists() && *flag.borrow()
        })
        .await;
        follow(&tx);
        until("the file removed and the report false", || {
            !path.exists() && !*flag.borrow()
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn file_states_identity_token_and_wall_clock_deadline_and_follows_renewals() {
        let dir = TempDir::new("format");
        let path = dir.0.join("leader_status");
        let (tx, rx) = crate::status::channel("pod-a");
        let wall: Timestamp = "2026-11-22T03:00:00.25Z".parse().unwrap();
        let _task = tokio::spawn(run_with_clock(
            path.clone(),
            rx,
            WallClock::fixed(wall),
            std::future::pending(),
        ));
        tx.send_modify(|state| {
            state.set_claims_leadership(true);
            state.fencing_token = Some(7);
            state.valid_until = Some(Instant::now() + Duration::from_millis(10_500));
        });
        let expected = "pod-a\nfencing_token=7\nvalid_until=2026-11-22T03:00:10.75Z\n";
        until("the file with identity, token and deadline", || {
            content(&path).as_deref() == Some(expected)
        })
        .await;
        // A renewal moves the deadline, and the file with it.
        tx.send_modify(|state| state.valid_until = Some(Instant::now() + Duration::from_secs(20)));
        until("the renewed deadline", || {
            content(&path).as_deref() == Some("pod-a\nfencing_token=7\nvalid_until=2026-11-22T03:00:20.25Z\n")
        })
        .await;
    }

    #[test]
    fn wall_deadline_saturates_instead_of_overflowing() {
        let now = Instant::now();
        let wall: Timestamp = "2026-11-22T03:00:00Z".parse().unwrap();
        assert_eq!(wall_deadline(now, now, wall), wall);
        assert_eq!(
            wall_deadline(now + Duration::from_secs(3), now, wall),
            "2026-11-22T03:00:03Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            wall_deadline(later(now, Duration::MAX), now, Timestamp::MAX),
            Timestamp::MAX
        );
        assert_eq!(
            wall_deadline(now, now + Duration::from_secs(1), wall),
            wall,
            "a deadline already past is now"
        );
    }

    #[test]
    fn a_symlink_planted_at_the_path_is_replaced_not_followed() {
        let dir = TempDir::new("symlink");
        let path = dir.0.join("leader_status");
        let victim = dir.0.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, "pod-a\n").unwrap();
        assert_eq!(
            content(&victim).as_deref(),
            Some("precious"),
            "the link's target is untouched"
        );
        assert!(
            !std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(),
            "the path is now a regular file"
        );
        assert_eq!(content(&path).as_deref(), Some("pod-a\n"));
    }

    #[test]
    fn temporary_names_are_random_and_never_reuse_an_existing_file() {
        let dir = TempDir::new("tempnames");
        let path = dir.0.join("leader_status");
        let a = temp_path(&path);
        let b = temp_path(&path);
        assert_ne!(a, b, "two temporary names in a row differ");
        assert_eq!(a.parent(), path.parent(), "next to the target");
        // Exclusive creation: even a name that already exists is refused, never written through.
        std::fs::write(&a, "someone else's").unwrap();
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
            .open(&a);
        assert!(reopened.is_err(), "create_new refuses an existing file");
    }

    #[tokio::test(start_paused = true)]
    async fn file_disappears_at_the_validity_deadline_without_a_state_update() {
        let dir = TempDir::new("deadline");
        let path = dir.0.join("leader_status");
        let (tx, rx) = crate::status::channel("pod-a");
        let _task = tokio::spawn(run(path.clone(), rx, std::future::pending()));

        lead(&tx, Duration::from_secs(10));
        until("the file to appear", || path.exists()).await;
        tokio::time::advance(Duration::from_millis(9_999)).await;
        stays("the file to remain before the deadline", || path.exists()).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        until("the file to disappear at the deadline", || !path.exists()).await;

        // A renew that extends the claim brings it back, and the new deadline is the one that counts.
        lead(&tx, Duration::from_secs(5));
        until("the file to reappear after a renew", || path.exists()).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        until("the file to disappear at the new deadline", || !path.exists()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_file_from_an_earlier_run_is_removed_at_start() {
        let dir = TempDir::new("stale");
        let path = dir.0.join("leader_status");
        std::fs::write(&path, "pod-old").unwrap();
        let (_tx, rx) = crate::status::channel("pod-a");
        let _task = tokio::spawn(run(path.clone(), rx, std::future::pending()));
        until("the stale file to be removed", || !path.exists()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn file_is_removed_when_the_election_loop_goes_away() {
        let dir = TempDir::new("dropped");
        let path = dir.0.join("leader_status");
        let (tx, rx) = crate::status::channel("pod-a");
        let task = tokio::spawn(run(path.clone(), rx, std::future::pending()));
        lead(&tx, Duration::from_secs(10));
        until("the file to appear", || path.exists()).await;
        drop(tx);
        task.await.unwrap();
        assert!(!path.exists(), "the file must go with the election loop");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unwritable_directory_is_reported_and_retried_not_fatal() {
        let dir = TempDir::new("unwritable");
        let missing = dir.0.join("not-yet");
        let path = missing.join("leader_status");
        let error = write_atomic(&path, "pod-a").expect_err("the directory does not exist");
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "the error names the path: {message}"
        );

        let (tx, rx) = crate::status::channel("pod-a");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(path.clone(), rx, async move {
            let _ = stop_rx.await;
        }));
        lead(&tx, Duration::from_secs(60));
        stays("the task to keep running after a failed write", || {
            !task.is_finished()
        })
        .await;

        // The directory appears (say, a volume mounted late): the next retry writes the file.
        std::fs::create_dir_all(&missing).unwrap();
        tokio::time::advance(RETRY_AFTER).await;
        until("the retry to write the file", || path.exists()).await;

        stop_tx.send(()).unwrap();
        task.await.expect("run must not panic");
        assert!(!path.exists());
    }

    #[test]
    fn write_replaces_atomically_and_remove_tolerates_absence() {
        let dir = TempDir::new("atomic");
        let path = dir.0.join("leader_status");
        write_atomic(&path, "pod-a").unwrap();
        write_atomic(&path, "pod-b").unwrap();
        assert_eq!(content(&path).as_deref(), Some("pod-b"));
        assert_eq!(leftovers(&dir.0), Vec::<String>::new());
        remove(&path).unwrap();
        remove(&path).expect("removing an absent file is fine");
        assert!(!path.exists());
    }
}
