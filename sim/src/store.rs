//! Object storage: one global resourceVersion, the watch history window, and watch fan-out.
//!
//! All objects of all kinds live in one map under one lock, as in a single etcd: every applied
//! write takes the next resourceVersion, is appended to the history window (default the last 1000
//! changes) and to the write log, and is broadcast to open watch streams, all under that lock, so
//! every observer sees one order. A write that changes nothing is not a write (no new
//! resourceVersion, no event), as with the real server. System fields (`uid`,
//! `creationTimestamp`, `resourceVersion`, Pod `generation`) are set here and nowhere else.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::accounting::{WriteRecord, monotonic_ns};
use crate::resource::Kind;
use crate::status::ApiError;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One applied change, as kept in history and broadcast to watchers.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub event_type: EventType,
    pub object: Arc<Value>,
}

/// What a write closure decides, given the current object.
#[derive(Debug)]
pub enum Plan {
    /// Store this object (create when absent, replace when present).
    Put(Value),
    /// Remove the object.
    Delete,
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created(Arc<Value>),
    Updated(Arc<Value>),
    /// The new object equals the stored one: nothing was written.
    Unchanged(Arc<Value>),
    Deleted(Arc<Value>),
}

/// Facts a write closure may need besides the current object.
#[derive(Debug, Clone, Copy)]
pub struct WriteEnv {
    /// Whether the target namespace exists.
    pub namespace_exists: bool,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchFrom {
    /// Synthetic ADDED events for the current objects, then live events.
    Snapshot,
    /// Every change after this resourceVersion, then live events.
    After(u64),
}

/// The start of a watch: events to send first, the resourceVersion they bring the watcher to,
/// and the live feed from there on (no gap, no duplicate).
#[derive(Debug)]
pub struct WatchStart {
    pub initial: Vec<(EventType, Arc<Value>)>,
    pub rv: u64,
    pub live: broadcast::Receiver<Arc<Change>>,
}

type Key = (Kind, String, String);

#[derive(Debug)]
struct Inner {
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Changes at or below this resourceVersion may be missing from `history`.
    compacted_rv: u64,
    namespaces: BTreeSet<String>,
    writes: Vec<WriteRecord>,
}

/// The object store.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Change>>,
}

/// A random UUID (version 4 format), as the real server assigns to `metadata.uid`.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Now in the `metav1.Time` format (seconds, UTC).
pub fn now_time() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object)
        && let Some(map) = obj.as_object_mut()
    {
        map.insert("metadata".into(), Value::Object(serde_json::Map::new()));
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(field.to_owned(), value);
    }
}

impl Store {
    /// An empty store with these namespaces and this history window.
    pub fn new(history_limit: usize, namespaces: impl IntoIterator<Item = String>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted_rv: 1,
                namespaces: namespaces.into_iter().collect(),
                writes: Vec::new(),
            }),
            tx: broadcast::channel(16 * 1024).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Whether the namespace exists.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.lock().namespaces.contains(ns)
    }

    /// One object.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .objects
            .get(&(kind, ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// All objects of a kind (in one namespace or all), with the list's resourceVersion.
    pub fn list(&self, kind: Kind, ns: Option<&str>) -> (u64, Vec<Arc<Value>>) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (inner.rv, items)
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.values().map(|v| (**v).clone()).collect()
    }

    /// The write log after `since` (a seq; 0 for all).
    pub fn writes(&self, since: u64) -> Vec<WriteRecord> {
        let inner = self.lock();
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(inner.writes.len());
        inner.writes[start..].to_vec()
    }

    /// Forgets the watch history: watches from any earlier resourceVersion get 410 Expired.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted_rv = inner.rv;
    }

    /// Applies one write atomically. `decide` sees the current object (if any) and returns the
    /// plan, or the error to answer with; system fields are filled in here.
    pub fn write<F>(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        client: &str,
        verb: &str,
        decide: F,
    ) -> Result<Outcome, ApiError>
    where
        F: FnOnce(Option<&Value>, WriteEnv) -> Result<Plan, ApiError>,
    {
        let mut inner = self.lock();
        let key = (kind, ns.to_owned(), name.to_owned());
        let current = inner.objects.get(&key).cloned();
        let env = WriteEnv {
            namespace_exists: inner.namespaces.contains(ns),
        };
        let plan = decide(current.as_deref(), env)?;
        let (event_type, stored, outcome) = match (plan, current) {
            (Plan::Put(mut obj), None) => {
                if !env.namespace_exists {
                    return Err(ApiError::namespace_not_found(ns));
                }
                set_meta(&mut obj, "uid", new_uid().into());
                set_meta(&mut obj, "creationTimestamp", now_time().into());
                set_meta(&mut obj, "namespace", ns.into());
                if kind == Kind::Pod {
                    set_meta(&mut obj, "generation", 1.into());
                }
                let rv = inner.rv + 1;
                set_meta(&mut obj, "resourceVersion", rv.to_string().into());
                let obj = Arc::new(obj);
                (EventType::Added, obj.clone(), Outcome::Created(obj))
            }
            (Plan::Put(mut obj), Some(cur)) => {
                for field in ["uid", "creationTimestamp"] {
                    if let Some(v) = cur.get("metadata").and_then(|m| m.get(field)) {
                        set_meta(&mut obj, field, v.clone());
                    }
                }
                set_meta(&mut obj, "namespace", ns.into());
                if kind == Kind::Pod {
                    let gen_now = cur
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let bump = i64::from(cur.get("spec") != obj.get("spec"));
                    set_meta(&mut obj, "generation", (gen_now + bump).into());
                }
                set_meta(&mut obj, "resourceVersion", inner.rv_of(&cur).into());
                if obj == *cur {
                    return Ok(Outcome::Unchanged(cur));
                }
                let rv = inner.rv + 1;
                set_meta(&mut obj, "resourceVersion", rv.to_string().into());
                let obj = Arc::new(obj);
                (EventType::Modified, obj.clone(), Outcome::Updated(obj))
            }
            (Plan::Delete, Some(cur)) => {
                let mut obj = (*cur).clone();
                let rv = inner.rv + 1;
                set_meta(&mut obj, "resourceVersion", rv.to_string().into());
                let obj = Arc::new(obj);
                (EventType::Deleted, obj.clone(), Outcome::Deleted(obj))
            }
            (Plan::Delete, None) => return Err(ApiError::not_found(kind, name)),
        };
        inner.rv += 1;
        let rv = inner.rv;
        if event_type == EventType::Deleted {
            inner.objects.remove(&key);
        } else {
            inner.objects.insert(key, stored.clone());
        }
        let change = Arc::new(Change {
            rv,
            kind,
            namespace: ns.to_owned(),
            event_type,
            object: stored.clone(),
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > inner.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted_rv = old.rv;
            }
        }
        let seq = inner.writes.len() as u64 + 1;
        inner.writes.push(WriteRecord {
            seq,
            resource_version: rv.to_string(),
            client: client.to_owned(),
            verb: verb.to_owned(),
            resource: kind.info().plural.to_owned(),
            namespace: ns.to_owned(),
            name: name.to_owned(),
            monotonic_ns: monotonic_ns(),
            object: (*stored).clone(),
        });
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(change);
        Ok(outcome)
    }

    /// Starts a watch on `kind` (in `ns`, or all namespaces). `Err` is the 410 Expired error
    /// when `from` is older than the history window.
    pub fn watch(&self, kind: Kind, ns: Option<&str>, from: WatchFrom) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let in_scope = |k: Kind, n: &str| k == kind && ns.is_none_or(|ns| ns == n);
        let initial = match from {
            WatchFrom::Snapshot => inner
                .objects
                .iter()
                .filter(|((k, n, _), _)| in_scope(*k, n))
                .map(|(_, v)| (EventType::Added, v.clone()))
                .collect(),
            WatchFrom::After(n) => {
                if n < inner.compacted_rv {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {n} ({})",
                        inner.compacted_rv
                    )));
                }
                inner
                    .history
                    .iter()
                    .filter(|c| c.rv > n && in_scope(c.kind, &c.namespace))
                    .map(|c| (c.event_type, c.object.clone()))
                    .collect()
            }
        };
        Ok(WatchStart {
            initial,
            rv: inner.rv,
            live: self.tx.subscribe(),
        })
    }
}

impl Inner {
    fn rv_of(&self, obj: &Value) -> String {
        meta_str(obj, "resourceVersion").map_or_else(|| self.rv.to_string(), str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> Store {
        Store::new(3, ["default".to_owned()])
    }

    fn put(s: &Store, name: &str, v: Value) -> Result<Outcome, ApiError> {
        s.write(Kind::ConfigMap, "default", name, "t", "create", |_, _| {
            Ok(Plan::Put(v))
        })
    }

    fn rv(o: &Outcome) -> u64 {
        let v = match o {
            Outcome::Created(v) | Outcome::Updated(v) | Outcome::Unchanged(v) | Outcome::Deleted(v) => v,
        };
        meta_str(v, "resourceVersion").unwrap().parse().unwrap()
    }

    #[test]
    fn every_write_bumps_one_global_version() {
        let s = store();
        let a = put(&s, "a", json!({"metadata": {"name": "a"}})).unwrap();
        let b = put(&s, "b", json!({"metadata": {"name": "b"}})).unwrap();
        assert_eq!(rv(&b), rv(&a) + 1);
        let same = put(&s, "b", json!({"metadata": {"name": "b"}})).unwrap();
        assert!(
            matches!(same, Outcome::Unchanged(_)),
            "a no-op write must not be a write: {same:?}"
        );
        let changed = put(&s, "b", json!({"metadata": {"name": "b"}, "data": {"k": "v"}})).unwrap();
        assert!(matches!(changed, Outcome::Updated(_)));
        assert_eq!(rv(&changed), rv(&b) + 1);
        assert_eq!(s.writes(0).len(), 3);
        assert_eq!(s.writes(2).len(), 1);
    }

    #[test]
    fn unknown_namespace_is_refused_on_create() {
        let s = store();
        let e = s
            .write(Kind::ConfigMap, "nope", "a", "t", "create", |_, _| {
                Ok(Plan::Put(json!({})))
            })
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );
    }

    #[test]
    fn history_window_and_compaction() {
        let s = store();
        for i in 0..5 {
            put(
                &s,
                "a",
                json!({"metadata": {"name": "a"}, "data": {"i": i.to_string()}}),
            )
            .unwrap();
        }
        let now = s.current_rv();
        let w = s
            .watch(Kind::ConfigMap, Some("default"), WatchFrom::After(now - 3))
            .unwrap();
        assert_eq!(w.initial.len(), 3);
        let e = s
            .watch(Kind::ConfigMap, Some("default"), WatchFrom::After(now - 4))
            .unwrap_err();
        assert_eq!(e.code, 410);
        assert_eq!(
            e.message,
            format!("too old resource version: {} ({})", now - 4, now - 3)
        );
        s.compact();
        assert!(s.watch(Kind::ConfigMap, None, WatchFrom::After(now - 1)).is_err());
        assert!(s.watch(Kind::ConfigMap, None, WatchFrom::After(now)).is_ok());
        assert_eq!(
            s.watch(Kind::ConfigMap, None, WatchFrom::Snapshot)
                .unwrap()
                .initial
                .len(),
            1
        );
    }

    #[test]
    fn uids_look_like_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }
}
