//! The watch's events folded into the LimitRanges of the cluster.
//!
//! A (re)list arrives as `Init`, one `InitApply` per object, `InitDone`: it is gathered
//! aside and replaces the view whole at `InitDone`, so that a relist after `410 Gone` drops
//! the objects deleted meanwhile and requests never see a half-listed cluster.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use tracing::warn;

use super::read_object;
use crate::policy::{LimitRange, LimitRanges};

/// An object as read: its LimitRange, or `None` when it cannot be read (logged once, when
/// it arrives, and left out of the view).
type Objects = BTreeMap<(String, String), Option<LimitRange>>;

#[derive(Debug, Default)]
pub struct Store {
    /// By namespace and name.
    objects: Objects,
    /// The list being received, until its `InitDone`.
    listing: Option<Objects>,
}

/// What an event did to the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    Changed,
    /// A complete list replaced the view.
    Listed,
}

impl Store {
    pub fn apply(&mut self, event: Event<DynamicObject>) -> Applied {
        match event {
            Event::Init => {
                self.listing = Some(Objects::new());
                Applied::Nothing
            }
            Event::InitApply(object) => {
                if let Some((key, read)) = read(&object) {
                    self.listing.get_or_insert_default().insert(key, read);
                }
                Applied::Nothing
            }
            Event::InitDone => {
                self.objects = self.listing.take().unwrap_or_default();
                Applied::Listed
            }
            Event::Apply(object) => match read(&object) {
                Some((key, read)) => {
                    self.objects.insert(key, read);
                    Applied::Changed
                }
                None => Applied::Nothing,
            },
            Event::Delete(object) => match key_of(&object) {
                Some(key) if self.objects.remove(&key).is_some() => Applied::Changed,
                _ => Applied::Nothing,
            },
        }
    }

    /// The view, how many LimitRanges it holds, and how many were left out as unreadable.
    pub fn snapshot(&self) -> (LimitRanges, usize, usize) {
        let mut ranges = LimitRanges::new();
        let (mut held, mut invalid) = (0, 0);
        for ((namespace, _), read) in &self.objects {
            match read {
                Some(range) => {
                    ranges.insert(namespace, range.clone());
                    held += 1;
                }
                None => invalid += 1,
            }
        }
        (ranges, held, invalid)
    }
}

fn key_of(object: &DynamicObject) -> Option<(String, String)> {
    let namespace = object.metadata.namespace.clone().filter(|n| !n.is_empty());
    let name = object.metadata.name.clone().filter(|n| !n.is_empty());
    namespace.zip(name)
}

/// The object's key and its LimitRange; `None` for an object without namespace or name,
/// which no API server sends.
fn read(object: &DynamicObject) -> Option<((String, String), Option<LimitRange>)> {
    let Some(key) = key_of(object) else {
        warn!("LimitRange without a namespace or a name in the watch; ignored");
        return None;
    };
    match read_object(object) {
        Ok(range) => Some((key, Some(range))),
        Err(error) => {
            warn!(
                namespace = %key.0,
                name = %key.1,
                %error,
                "LimitRange cannot be read; left out, so its defaults and bounds do not apply"
            );
            Some((key, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(namespace: &str, name: &str, max_cpu: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": max_cpu}}]}
        }))
        .unwrap()
    }

    fn names(store: &Store, namespace: &str) -> Vec<String> {
        let (ranges, _, _) = store.snapshot();
        ranges
            .namespace(namespace)
            .iter()
            .map(|range| range.name.clone())
            .collect()
    }

    #[test]
    fn a_list_replaces_the_view_only_when_complete() {
        let mut store = Store::default();
        assert_eq!(store.apply(Event::Init), Applied::Nothing);
        assert_eq!(
            store.apply(Event::InitApply(object("a", "old", "1"))),
            Applied::Nothing
        );
        assert_eq!(store.apply(Event::InitDone), Applied::Listed);
        assert_eq!(names(&store, "a"), ["old"]);

        // A relist (after 410 Gone): the old view stays until InitDone, then goes whole.
        store.apply(Event::Init);
        store.apply(Event::InitApply(object("b", "new", "1")));
        assert_eq!(names(&store, "a"), ["old"]);
        assert!(names(&store, "b").is_empty());
        assert_eq!(store.apply(Event::InitDone), Applied::Listed);
        assert!(names(&store, "a").is_empty());
        assert_eq!(names(&store, "b"), ["new"]);
    }

    #[test]
    fn applies_and_deletes_change_the_view() {
        let mut store = Store::default();
        store.apply(Event::Init);
        store.apply(Event::InitDone);
        assert_eq!(
            store.apply(Event::Apply(object("a", "x", "1"))),
            Applied::Changed
        );
        store.apply(Event::Apply(object("a", "x", "2")));
        let (ranges, held, _) = store.snapshot();
        assert_eq!(held, 1);
        let max = ranges.namespace("a")[0].items[0].max.cpu;
        assert_eq!(max, object_max("2"));
        assert_eq!(
            store.apply(Event::Delete(object("a", "x", "2"))),
            Applied::Changed
        );
        assert!(names(&store, "a").is_empty());
        // Deleting what is not there changes nothing.
        assert_eq!(
            store.apply(Event::Delete(object("a", "x", "2"))),
            Applied::Nothing
        );
    }

    fn object_max(cpu: &str) -> Option<crate::policy::quantity::Quantity> {
        let range = LimitRange::from_json(&serde_json::to_value(object("n", "n", cpu)).unwrap());
        range.unwrap().items[0].max.cpu
    }

    #[test]
    fn an_unreadable_object_is_left_out_and_counted() {
        let mut store = Store::default();
        let bad: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "bad", "namespace": "a"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "lots"}}]}
        }))
        .unwrap();
        store.apply(Event::Init);
        store.apply(Event::InitApply(bad));
        store.apply(Event::InitApply(object("a", "good", "1")));
        store.apply(Event::InitDone);
        let (_, held, invalid) = store.snapshot();
        assert_eq!((held, invalid), (1, 1));
        assert_eq!(names(&store, "a"), ["good"]);
    }
}
