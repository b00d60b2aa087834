//! The calling convention: the panic boundary, the thread-local last error,
//! and checked conversions of C arguments.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{careledger_status, Failure};
use careledger_status::*;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(detail: String) {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = detail);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic payload")
}

/// Runs the body of a status-returning function: clears the last error,
/// catches any panic, and records the detail of a failure.
pub fn boundary(body: impl FnOnce() -> Result<(), Failure>) -> careledger_status {
    set_last_error(String::new());
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CARELEDGER_OK,
        Ok(Err(failure)) => {
            set_last_error(failure.detail);
            failure.status
        }
        Err(payload) => {
            set_last_error(format!(
                "internal error (panic) in careledger: {}",
                panic_text(payload.as_ref())
            ));
            CARELEDGER_PANIC
        }
    }
}

/// Runs the body of a function that cannot report a status (accessors,
/// frees): a panic yields `fallback`.
pub fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Copies the detail of the last failed call on this thread into `buf` as a
/// NUL-terminated string. The detail is empty after a successful call. Text
/// never contains patient data values (it may contain ids, file names,
/// line numbers and field names).
///
/// Parameters: `buf` receives the text (it may be NULL only when `cap` is 0,
/// to ask for the length); `cap` is its size in bytes; `out_len` (required)
/// receives the text length without the NUL, on `CARELEDGER_OK` and on
/// `CARELEDGER_BUFFER_TOO_SMALL` (allocate `*out_len + 1` and call again).
///
/// Ownership: `buf` and `out_len` are the caller's, borrowed for the call.
/// This call does not change the last error.
/// Thread safety: the detail is per thread; safe from any thread.
/// Returns `CARELEDGER_OK`, `CARELEDGER_NULL_PARAMETER` (`out_len` NULL, or
/// `buf` NULL with `cap` > 0), `CARELEDGER_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `buf` must be valid for `cap` bytes of writes; `out_len` for one write.
#[no_mangle]
pub unsafe extern "C" fn careledger_last_error(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> careledger_status {
    guard(CARELEDGER_PANIC, || {
        let text = LAST_ERROR.with(|slot| slot.borrow().clone());
        // SAFETY: forwarded from the caller.
        match unsafe { copy_text_out(&text, buf, cap, out_len) } {
            Ok(()) => CARELEDGER_OK,
            Err(failure) => failure.status,
        }
    })
}

fn null(name: &str) -> Failure {
    Failure::new(CARELEDGER_NULL_PARAMETER, format!("`{name}` is NULL"))
}

/// A required input pointer.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `T` for `'a`.
pub unsafe fn arg_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// A required output pointer.
///
/// # Safety
/// `ptr` is NULL or valid for writes of `T` for `'a`.
pub unsafe fn arg_out<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(name))
}

/// An optional output pointer (NULL means the caller does not want it).
///
/// # Safety
/// `ptr` is NULL or valid for writes of `T` for `'a`.
pub unsafe fn arg_out_opt<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_mut() }
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for `'a`.
pub unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|e| {
        Failure::new(
            CARELEDGER_INVALID_UTF8,
            format!(
                "`{name}` is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A borrowed input buffer. NULL is accepted only with `len` 0.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes for `'a`.
pub unsafe fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(name)) };
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(
            CARELEDGER_INVALID_ARGUMENT,
            format!("`{name}` length is larger than any buffer"),
        ));
    }
    // SAFETY: non-NULL, length in range, readable per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `text` plus a NUL into a caller buffer; `out_len` receives the
/// length without the NUL (also when the buffer is too small).
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes of writes; `out_len` is NULL or
/// valid for one write.
pub unsafe fn copy_text_out(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    let out_len = unsafe { arg_out(out_len, "out_len") }?;
    if buf.is_null() && cap > 0 {
        return Err(null("buf"));
    }
    *out_len = text.len();
    if cap < text.len() + 1 {
        return Err(Failure::new(
            CARELEDGER_BUFFER_TOO_SMALL,
            format!("needs {} bytes, buffer has {cap}", text.len() + 1),
        ));
    }
    // SAFETY: `buf` is non-NULL (cap > 0) and holds `text.len() + 1` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// A required handle argument: the object behind it, or
/// `CARELEDGER_NULL_PARAMETER` for NULL and `CARELEDGER_STALE_HANDLE` for a
/// handle that is freed, was never issued, or is of another type.
pub fn arg_handle<T: std::any::Any + Send + Sync>(
    ptr: *const T,
    name: &str,
) -> Result<std::sync::Arc<T>, Failure> {
    if ptr.is_null() {
        return Err(null(name));
    }
    crate::handles::lookup(ptr).ok_or_else(|| {
        Failure::new(
            CARELEDGER_STALE_HANDLE,
            format!("`{name}` is not a live handle (freed already, or not of this type)"),
        )
    })
}

/// Frees a handle; NULL, stale and wrong-type handles are harmless no-ops;
/// never unwinds.
pub fn free_handle<T: std::any::Any + Send + Sync>(ptr: *mut T) {
    guard((), || crate::handles::release(ptr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = vec![0 as c_char; 512];
        let mut len = 0;
        // SAFETY: buffer and length are valid.
        let status = unsafe { careledger_last_error(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(status, CARELEDGER_OK);
        // SAFETY: NUL-terminated by careledger_last_error.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_with_its_message() {
        let status = boundary(|| panic!("deliberate test panic"));
        assert_eq!(status, CARELEDGER_PANIC);
        assert!(last_error().contains("deliberate test panic"));
        let status = boundary(|| std::panic::panic_any(42_u8));
        assert_eq!(status, CARELEDGER_PANIC);
        assert!(last_error().contains("unknown panic payload"));
        assert_eq!(guard(7, || panic!("in an accessor")), 7);
    }

    #[test]
    fn failures_set_and_successes_clear_the_detail() {
        let status = boundary(|| Err(Failure::new(CARELEDGER_INVALID_ARGUMENT, "bad thing")));
        assert_eq!(status, CARELEDGER_INVALID_ARGUMENT);
        assert_eq!(last_error(), "bad thing");
        // Reading the detail does not change it.
        assert_eq!(last_error(), "bad thing");
        assert_eq!(boundary(|| Ok(())), CARELEDGER_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn the_detail_is_per_thread() {
        boundary(|| Err(Failure::new(CARELEDGER_INVALID_ARGUMENT, "this thread")));
        let other = std::thread::spawn(last_error).join().unwrap();
        assert_eq!(other, "");
        assert_eq!(last_error(), "this thread");
    }

    #[test]
    fn bad_arguments_are_statuses() {
        // SAFETY: every pointer below is NULL or valid.
        unsafe {
            let null = arg_str(std::ptr::null(), "name").unwrap_err();
            assert_eq!(null.status, CARELEDGER_NULL_PARAMETER);
            let bad = arg_str(c"ok\xff".as_ptr(), "name").unwrap_err();
            assert_eq!(bad.status, CARELEDGER_INVALID_UTF8);
            assert!(bad.detail.contains("offset 2"));
            assert_eq!(arg_bytes(std::ptr::null(), 0, "b").unwrap(), &[] as &[u8]);
            let missing = arg_bytes(std::ptr::null(), 3, "b").unwrap_err();
            assert_eq!(missing.status, CARELEDGER_NULL_PARAMETER);
            let huge = arg_bytes([0u8].as_ptr(), usize::MAX, "b").unwrap_err();
            assert_eq!(huge.status, CARELEDGER_INVALID_ARGUMENT);
            let mut small = [0 as c_char; 3];
            let mut len = 0;
            let e = copy_text_out("four", small.as_mut_ptr(), small.len(), &mut len).unwrap_err();
            assert_eq!((e.status, len), (CARELEDGER_BUFFER_TOO_SMALL, 4));
            assert_eq!(small, [0; 3], "nothing written on failure");
        }
    }
}
