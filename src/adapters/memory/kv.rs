//! KV in a sorted map. Tests can make reads or writes fail, as an
//! unreachable KV would, and hold writes back as Workers KV does while a
//! change travels to other locations (`lag_writes`, `propagate`).

use crate::ports::{Kv, PortError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Writes held back: key to value (`None`: a delete).
type Held = BTreeMap<String, Option<String>>;

#[derive(Clone, Default)]
pub struct MemoryKv {
    map: Rc<RefCell<BTreeMap<String, String>>>,
    /// Reads of keys starting with this fail.
    failing_reads: Rc<RefCell<Option<String>>>,
    /// Writes to keys starting with this fail.
    failing_writes: Rc<RefCell<Option<String>>>,
    /// While `Some`, writes through the `Kv` port wait here (`None`: a
    /// delete) until `propagate`.
    lagging: Rc<RefCell<Option<Held>>>,
}

impl MemoryKv {
    /// From now on every `get` of a key, and `list` of a prefix, starting
    /// with `prefix` fails (`""`: every read; `None` heals).
    pub fn fail_reads(&self, prefix: Option<&str>) {
        *self.failing_reads.borrow_mut() = prefix.map(str::to_string);
    }
    /// From now on every `put` and `delete` (the port's) of a key starting
    /// with `prefix` fails (`None` heals).
    pub fn fail_writes(&self, prefix: Option<&str>) {
        *self.failing_writes.borrow_mut() = prefix.map(str::to_string);
    }
    /// From now on writes through the port are accepted but not read back
    /// (by anyone) until [`Self::propagate`]: eventual consistency.
    pub fn lag_writes(&self) {
        self.lagging.borrow_mut().get_or_insert_with(Held::new);
    }
    /// Applies the writes held back, and stops holding them.
    pub fn propagate(&self) {
        for (key, value) in self.lagging.borrow_mut().take().unwrap_or_default() {
            match value {
                Some(v) => self.put(&key, &v),
                None => self.delete(&key),
            }
        }
    }
    fn check(&self, key: &str) -> Result<(), PortError> {
        match self.failing_reads.borrow().as_deref() {
            Some(p) if key.starts_with(p) => Err(PortError("KV unreachable (test)".into())),
            _ => Ok(()),
        }
    }
    fn check_write(&self, key: &str) -> Result<(), PortError> {
        self.check(key)?;
        match self.failing_writes.borrow().as_deref() {
            Some(p) if key.starts_with(p) => Err(PortError("KV write refused (test)".into())),
            _ => Ok(()),
        }
    }
    /// Writes at once, as a test sets KV up (not through the port).
    pub fn put(&self, key: &str, value: &str) {
        self.map
            .borrow_mut()
            .insert(key.to_string(), value.to_string());
    }
    pub fn delete(&self, key: &str) {
        self.map.borrow_mut().remove(key);
    }
    /// The value of `key` (tests).
    pub fn value(&self, key: &str) -> Option<String> {
        self.map.borrow().get(key).cloned()
    }
    /// Every key starting with `prefix` (tests).
    pub fn keys_with(&self, prefix: &str) -> Vec<String> {
        self.map
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
    /// A write through the port: held back while lagging.
    fn write(&self, key: &str, value: Option<&str>) {
        if let Some(held) = self.lagging.borrow_mut().as_mut() {
            held.insert(key.to_string(), value.map(str::to_string));
            return;
        }
        match value {
            Some(v) => self.put(key, v),
            None => self.delete(key),
        }
    }
}

impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        self.check(key)?;
        Ok(self.value(key))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.check(prefix)?;
        Ok(self.keys_with(prefix))
    }
    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.check_write(key)?;
        self.write(key, Some(value));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.check_write(key)?;
        self.write(key, None);
        Ok(())
    }
}
