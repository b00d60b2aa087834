//! The handle registry: every handle given to C is a token for an entry of
//! one process-wide table, never a pointer Rust dereferences. A call looks
//! the token up (with its type) before touching anything, so a freed, never
//! issued, or wrong-type handle is detected and answered with
//! `CARELEDGER_STALE_HANDLE` (accessors answer NULL or 0, frees do nothing)
//! instead of being undefined behaviour. Tokens are never reused, so a stale
//! handle cannot alias a newer object. Each call holds its own reference to
//! the object, so freeing a handle while another thread still runs a call on
//! it is safe too: the object goes away when the last call returns.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

type Object = Arc<dyn Any + Send + Sync>;

struct Registry {
    next: usize,
    live: Option<HashMap<usize, Object>>,
}

/// Tokens step by this, so they look like aligned pointers; they start far
/// from 0 so small integers a caller passes by mistake are never live.
const STEP: usize = 16;
const FIRST: usize = 0x10_0000;

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: FIRST,
    live: None,
});

fn registry() -> MutexGuard<'static, Registry> {
    // The table is consistent after any panic (single inserts and removes).
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `value` and returns its handle.
pub fn register<T: Any + Send + Sync>(value: T) -> *mut T {
    let mut registry = registry();
    let token = registry.next;
    registry.next = registry
        .next
        .checked_add(STEP)
        .expect("handle tokens exhausted");
    registry
        .live
        .get_or_insert_with(HashMap::new)
        .insert(token, Arc::new(value));
    std::ptr::without_provenance_mut(token)
}

/// The object behind a live handle of type `T`; `None` for NULL, freed,
/// never issued, or another type's handle.
pub fn lookup<T: Any + Send + Sync>(handle: *const T) -> Option<Arc<T>> {
    let registry = registry();
    let object = registry.live.as_ref()?.get(&handle.addr())?.clone();
    drop(registry);
    object.downcast::<T>().ok()
}

/// Removes a live handle of type `T`; a NULL, stale or wrong-type handle is
/// left alone. The object is dropped once no call still uses it.
pub fn release<T: Any + Send + Sync>(handle: *mut T) {
    let object = {
        let mut registry = registry();
        let Some(live) = registry.live.as_mut() else {
            return;
        };
        match live.get(&handle.addr()) {
            Some(object) if object.is::<T>() => live.remove(&handle.addr()),
            _ => None,
        }
    };
    // Dropped outside the lock: a node's drop closes its store.
    drop(object);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_foreign_and_wrong_type_handles_are_not_found() {
        let a = register(5u32);
        let b = register(String::from("x"));
        assert_eq!(*lookup(a).unwrap(), 5);
        assert!(lookup(a.cast::<String>()).is_none(), "wrong type");
        assert!(lookup(std::ptr::null::<u32>()).is_none());
        assert!(lookup(std::ptr::without_provenance::<u32>(8)).is_none());
        release(a.cast::<String>());
        assert!(lookup(a).is_some(), "a wrong-type free frees nothing");
        let held = lookup(a).unwrap();
        release(a);
        assert!(lookup(a).is_none(), "freed");
        assert_eq!(*held, 5, "a call in flight keeps its object");
        release(a);
        let c = register(6u32);
        assert_ne!(c.addr(), a.addr(), "tokens are never reused");
        release(b);
        release(c);
    }
}
