//! This process's incarnation: who it is beyond its identity.
//!
//! Identities are chosen by people (`--id`, the pod name) and can be shared by mistake: a
//! duplicated `--id`, pods that set `spec.hostname`, a StatefulSet pod force-deleted on a
//! partitioned node and recreated under the same name. Each process therefore draws an
//! incarnation when it starts, `<pod UID>/<start time in µs>/<random>` (`-` for the pod UID when
//! the downward API does not give it), and writes it next to the record (see
//! [`super::record::INCARNATION_ANNOTATION`]). A record naming this identity with another
//! incarnation belongs to another process.
//!
//! One case is decidable at once: a record left by an earlier container of the **same pod**. The
//! kubelet starts a container again only after the previous one exited, so a predecessor with the
//! same pod UID and an earlier start time cannot still be acting, and its lock may be taken back
//! without waiting out its lease.

use jiff::Timestamp;

/// Draws a fresh incarnation for a process that started at `started` in the pod `pod_uid`.
pub fn draw(pod_uid: Option<&str>, started: Timestamp) -> String {
    let pod = pod_uid
        .filter(|uid| !uid.is_empty() && !uid.contains('/'))
        .unwrap_or("-");
    let micros = started.as_microsecond();
    format!("{pod}/{micros}/{:016x}", rand::random::<u64>())
}

/// The pod UID and start time an incarnation names, if it has this module's format and a pod.
fn parts(incarnation: &str) -> Option<(&str, i64)> {
    let mut fields = incarnation.split('/');
    let (pod, started, nonce) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || pod == "-" || pod.is_empty() || nonce.is_empty() {
        return None;
    }
    Some((pod, started.parse().ok()?))
}

/// Whether `theirs` is an earlier container of the same pod as `mine`, and so has exited.
pub fn is_predecessor_in_pod(theirs: &str, mine: &str) -> bool {
    match (parts(theirs), parts(mine)) {
        (Some((their_pod, their_start)), Some((my_pod, my_start))) => {
            their_pod == my_pod && their_start < my_start
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn incarnations_are_fresh_and_name_the_pod() {
        let now = at("2026-01-01T00:00:00Z");
        let a = draw(Some("uid-1"), now);
        let b = draw(Some("uid-1"), now);
        assert_ne!(a, b, "two processes started at the same instant still differ");
        assert!(a.starts_with("uid-1/1767225600000000/"), "{a}");
        assert!(draw(None, now).starts_with("-/"));
    }

    #[test]
    fn only_an_earlier_container_of_the_same_pod_is_a_predecessor() {
        let earlier = draw(Some("uid-1"), at("2026-01-01T00:00:00Z"));
        let later = draw(Some("uid-1"), at("2026-01-01T00:00:05Z"));
        assert!(is_predecessor_in_pod(&earlier, &later));
        assert!(
            !is_predecessor_in_pod(&later, &earlier),
            "a later one is a live sibling"
        );
        let other_pod = draw(Some("uid-2"), at("2026-01-01T00:00:00Z"));
        assert!(
            !is_predecessor_in_pod(&other_pod, &later),
            "another pod proves nothing"
        );
        let no_pod = draw(None, at("2026-01-01T00:00:00Z"));
        let no_pod_later = draw(None, at("2026-01-01T00:00:05Z"));
        assert!(
            !is_predecessor_in_pod(&no_pod, &no_pod_later),
            "without a pod UID nothing is proven"
        );
        assert!(!is_predecessor_in_pod("garbage", &later));
        assert!(!is_predecessor_in_pod("uid-1/x/ff", &later));
    }
}
