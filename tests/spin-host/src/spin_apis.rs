//! Host side of the Spin interfaces that wasmtime-wasi(-http) does not cover:
//!
//! * `spin:key-value/key-value@3.0.0` (async functions, `get-keys` returns a
//!   component-model `stream<string>` plus a `future`);
//! * `spin:variables/variables@3.0.0`;
//! * `wasi:keyvalue/store` and `wasi:keyvalue/atomics` @0.2.0-draft2, which
//!   spin-sdk 7 uses for atomic counters.
//!
//! All of them read and write in-process maps shared by every request (and
//! every component instance), like a Spin app's stores: `default` always, plus
//! each label given with `--kv-store` (as a runtime config file would declare
//! them). A store/bucket resource is just the index of its label, so it needs
//! no resource table entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use wasmtime::component::{Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader};

wasmtime::component::bindgen!({
    path: "wit",
    world: "host",
    // Every import may trap (returns `wasmtime::Result<..>`); the WIT
    // `async func`s additionally get `async | store` (an `Accessor`).
    imports: { default: trappable },
    with: { "wasi:keyvalue/atomics.cas": Cas },
});

use spin::key_value::key_value as spin_kv;
use spin::variables::variables as spin_vars;
use wasi::keyvalue::{atomics as wasi_atomics, store as wasi_store};

/// One store: key -> raw bytes.
pub type Map = BTreeMap<String, Vec<u8>>;

/// The state shared by all requests.
pub struct Shared {
    /// Stores by label; index 0 is `default`.
    pub stores: Vec<(String, Mutex<Map>)>,
    /// `--var name=value` values.
    pub vars: HashMap<String, String>,
    /// Operations per store and key prefix (the key up to its first `/`;
    /// empty for listing keys), for benchmarks that count what a request
    /// costs in key-value round trips.
    pub ops: Mutex<BTreeMap<(String, String), u64>>,
}

impl Shared {
    /// The store a resource handle points at.
    fn kv<R: 'static>(&self, store: &Resource<R>, key: &str) -> MutexGuard<'_, Map> {
        let index = store.rep() as usize;
        let (label, map) = &self.stores[index];
        // Every operation takes the store's lock once, so this counts them.
        let prefix = key.split('/').next().unwrap_or_default().to_string();
        *self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((label.clone(), prefix))
            .or_default() += 1;
        // A panic while holding the lock cannot leave the map half-updated
        // (every update is a single insert/remove), so ignore poisoning.
        map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `{"store:prefix": operations, ...}` in JSON.
    pub fn ops_json(&self) -> String {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let counts: Vec<String> = ops
            .iter()
            .map(|((label, prefix), n)| format!("{:?}: {n}", format!("{label}:{prefix}")))
            .collect();
        format!("{{{}}}", counts.join(", "))
    }

    /// Every entry of every store, values as stored: `label\tkey\tvalue`
    /// lines.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (label, map) in &self.stores {
            let map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (key, value) in map.iter() {
                out.extend_from_slice(format!("{label}\t{key}\t").as_bytes());
                out.extend_from_slice(value);
                out.push(b'\n');
            }
        }
        out
    }

    /// The handle for `label`, if such a store exists.
    fn open<R: 'static>(&self, label: &str) -> Option<Resource<R>> {
        let index = self.stores.iter().position(|(l, _)| l == label)?;
        Some(Resource::new_own(index as u32))
    }
}

/// What the generated `Host` traits are implemented on: the shared state plus
/// the store's resource table (only needed for `wasi:keyvalue` CAS handles).
pub struct SpinView<'a> {
    pub shared: &'a Shared,
    pub table: &'a mut ResourceTable,
}

/// Marker type tying `SpinView` to the bindings (`HasData`), the way
/// wasmtime-wasi uses `WasiClocks`, `WasiHttp`, ...
pub struct SpinApis;

impl HasData for SpinApis {
    type Data<'a> = SpinView<'a>;
}

/// Adds all interfaces of `wit/host.wit` to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> SpinView<'_>,
) -> wasmtime::Result<()> {
    Host_::add_to_linker::<T, SpinApis>(linker, view)
}

fn with_shared<T, R>(acc: &Accessor<T, SpinApis>, f: impl FnOnce(&Shared) -> R) -> R {
    acc.with(|mut access| f(access.get().shared))
}

// ---- spin:key-value/key-value@3.0.0 ----------------------------------------

impl spin_kv::Host for SpinView<'_> {}

impl spin_kv::HostStore for SpinView<'_> {
    fn drop(&mut self, _store: Resource<spin_kv::Store>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl<T> spin_kv::HostStoreWithStore<T> for SpinApis {
    async fn open(
        acc: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<spin_kv::Store>, spin_kv::Error>> {
        Ok(with_shared(acc, |s| s.open(&label)).ok_or(spin_kv::Error::NoSuchStore))
    }

    async fn get(
        acc: &Accessor<T, Self>,
        store: Resource<spin_kv::Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        Ok(Ok(with_shared(acc, |s| {
            s.kv(&store, &key).get(&key).cloned()
        })))
    }

    async fn set(
        acc: &Accessor<T, Self>,
        store: Resource<spin_kv::Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        with_shared(acc, |s| s.kv(&store, &key).insert(key, value));
        Ok(Ok(()))
    }

    async fn delete(
        acc: &Accessor<T, Self>,
        store: Resource<spin_kv::Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        with_shared(acc, |s| s.kv(&store, &key).remove(&key));
        Ok(Ok(()))
    }

    async fn exists(
        acc: &Accessor<T, Self>,
        store: Resource<spin_kv::Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        Ok(Ok(with_shared(acc, |s| {
            s.kv(&store, &key).contains_key(&key)
        })))
    }

    async fn get_keys(
        acc: &Accessor<T, Self>,
        store: Resource<spin_kv::Store>,
    ) -> wasmtime::Result<(
        StreamReader<String>,
        FutureReader<Result<(), spin_kv::Error>>,
    )> {
        // Snapshot the keys, then hand them out as a host-produced stream
        // (`Vec<T>` is a `StreamProducer`); the future reports success.
        acc.with(|mut access| {
            let keys: Vec<String> = access.get().shared.kv(&store, "").keys().cloned().collect();
            let stream = StreamReader::new(&mut access, keys)?;
            let done = async { Ok::<_, wasmtime::Error>(Ok::<(), spin_kv::Error>(())) };
            Ok((stream, FutureReader::new(&mut access, done)?))
        })
    }
}

// ---- spin:variables/variables@3.0.0 -----------------------------------------

impl spin_vars::Host for SpinView<'_> {}

impl<T> spin_vars::HostWithStore<T> for SpinApis {
    async fn get(
        acc: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, spin_vars::Error>> {
        if !valid_variable_name(&name) {
            return Ok(Err(spin_vars::Error::InvalidName(name)));
        }
        Ok(with_shared(acc, |s| s.vars.get(&name).cloned())
            .ok_or_else(|| spin_vars::Error::Undefined(format!("no variable named {name:?}"))))
    }
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and
/// single underscores, starting with a letter (so `API_KEY` is invalid).
pub fn valid_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
}

// ---- wasi:keyvalue/store@0.2.0-draft2 ---------------------------------------

impl wasi_store::Host for SpinView<'_> {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<wasi_store::Bucket>, wasi_store::Error>> {
        Ok(self
            .shared
            .open(&identifier)
            .ok_or(wasi_store::Error::NoSuchStore))
    }
}

impl wasi_store::HostBucket for SpinView<'_> {
    fn get(
        &mut self,
        bucket: Resource<wasi_store::Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        Ok(Ok(self.shared.kv(&bucket, &key).get(&key).cloned()))
    }

    fn set(
        &mut self,
        bucket: Resource<wasi_store::Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        self.shared.kv(&bucket, &key).insert(key, value);
        Ok(Ok(()))
    }

    fn delete(
        &mut self,
        bucket: Resource<wasi_store::Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi_store::Error>> {
        self.shared.kv(&bucket, &key).remove(&key);
        Ok(Ok(()))
    }

    fn exists(
        &mut self,
        bucket: Resource<wasi_store::Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi_store::Error>> {
        Ok(Ok(self.shared.kv(&bucket, &key).contains_key(&key)))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<wasi_store::Bucket>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_store::KeyResponse, wasi_store::Error>> {
        // Everything in one page: no cursor.
        let keys = self.shared.kv(&bucket, "").keys().cloned().collect();
        Ok(Ok(wasi_store::KeyResponse { keys, cursor: None }))
    }

    fn drop(&mut self, _: Resource<wasi_store::Bucket>) -> wasmtime::Result<()> {
        Ok(())
    }
}

// ---- wasi:keyvalue/atomics@0.2.0-draft2 -------------------------------------

/// A compare-and-swap handle: the store (label index), the key and the value
/// seen when it was made.
pub struct Cas {
    store: u32,
    key: String,
    seen: Option<Vec<u8>>,
}

/// Counters are stored as 8 bytes of little-endian `i64`, which is what
/// Spin's default (SQLite) key-value store does, so a component reading a
/// counter with `get` sees the same bytes as under `spin up`.
fn decode_counter(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

impl wasi_atomics::Host for SpinView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<wasi_atomics::Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_store::Error>> {
        let mut kv = self.shared.kv(&bucket, &key);
        let current = match kv.get(&key) {
            None => 0,
            Some(bytes) => match decode_counter(bytes) {
                Some(n) => n,
                None => {
                    let msg = format!("value of {key:?} is not an 8-byte little-endian i64");
                    return Ok(Err(wasi_store::Error::Other(msg)));
                }
            },
        };
        let new = current.wrapping_add(delta);
        kv.insert(key, new.to_le_bytes().to_vec());
        Ok(Ok(new))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_atomics::CasError>> {
        let store = Resource::<wasi_store::Bucket>::new_own(self.table.get(&cas)?.store);
        let key = self.table.get(&cas)?.key.clone();
        let mut kv = self.shared.kv(&store, &key);
        let swapped = {
            let c = self.table.get(&cas)?;
            if kv.get(&c.key) == c.seen.as_ref() {
                kv.insert(c.key.clone(), value);
                true
            } else {
                false
            }
        };
        if swapped {
            self.table.delete(cas)?;
            Ok(Ok(()))
        } else {
            // The guest gets its (still owned) handle back to retry with.
            Ok(Err(wasi_atomics::CasError::CasFailed(cas)))
        }
    }
}

impl wasi_atomics::HostCas for SpinView<'_> {
    fn new(
        &mut self,
        bucket: Resource<wasi_atomics::Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wasi_store::Error>> {
        let seen = self.shared.kv(&bucket, &key).get(&key).cloned();
        let store = bucket.rep();
        Ok(Ok(self.table.push(Cas { store, key, seen })?))
    }

    fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_store::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

/// Loads one `--kv-seed` file: the JSON array `wrangler kv bulk put` takes,
/// `[{"key": "...", "value": "..."}, ...]`; values are stored as their UTF-8
/// bytes. Other fields (expiration, metadata) are ignored; `base64: true`
/// values are refused rather than stored wrongly.
pub fn load_seed(path: &str, kv: &mut BTreeMap<String, Vec<u8>>) -> Result<usize, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        key: String,
        value: String,
        #[serde(default)]
        base64: bool,
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let n = entries.len();
    for e in entries {
        if e.base64 {
            return Err(format!(
                "{path}: key {:?}: base64 values are not supported",
                e.key
            ));
        }
        kv.insert(e.key, e.value.into_bytes());
    }
    Ok(n)
}
