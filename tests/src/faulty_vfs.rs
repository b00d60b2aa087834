//! A SQLite VFS that wraps the platform's default VFS and makes chosen file
//! operations fail, for I/O fault-injection tests.
//!
//! [`install`] registers the shim as SQLite's default VFS for the whole
//! process (so only test binaries of their own should call it): every
//! connection opened afterwards, including the ones careledger's
//! `Store::open` makes, goes through it. Nothing is counted or failed until a
//! [`Watch`] names the database files it covers (a path prefix each: the
//! `-wal` and `-journal` files of a database share its prefix); every other
//! file — a relay's database, another test's store — passes straight
//! through. Tests running in parallel threads each use their own `Watch`.
//!
//! A watch counts `xWrite`, `xSync` and `xTruncate` calls on its files; armed
//! with a [`Fault`], it makes the n-th call of one kind fail with the error a
//! real disk would give: `SQLITE_IOERR_WRITE`, `SQLITE_IOERR_FSYNC`,
//! `SQLITE_IOERR_TRUNCATE`, or `SQLITE_FULL` (disk full). A failed call does
//! nothing to the file. A *sticky* fault keeps failing every later call of
//! that kind until [`Watch::disarm`] (a disk that stays full until space is
//! freed); otherwise only the n-th call fails (a transient error).
//!
//! ```no_run
//! use careledger_scenarios::faulty_vfs::{install, Fault, FaultKind, Op, Watch};
//! install();
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("node.sqlite");
//! let watch = Watch::new(&[&path]);
//! watch.arm(Fault { op: Op::Sync, nth: 1, kind: FaultKind::Io, sticky: false });
//! // ... open the store at `path` and use it: its first fsync fails ...
//! assert!(watch.fired().is_some());
//! ```

use std::ffi::{c_int, c_void, CStr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

/// A counted file operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `xWrite`.
    Write,
    /// `xSync` (fsync / fdatasync).
    Sync,
    /// `xTruncate`.
    Truncate,
}

impl Op {
    /// Every counted operation.
    pub const ALL: [Op; 3] = [Op::Write, Op::Sync, Op::Truncate];

    fn index(self) -> usize {
        match self {
            Op::Write => 0,
            Op::Sync => 1,
            Op::Truncate => 2,
        }
    }
}

/// What a failing operation reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// An I/O error (`SQLITE_IOERR_WRITE` / `_FSYNC` / `_TRUNCATE`).
    Io,
    /// The disk is full (`SQLITE_FULL`).
    DiskFull,
}

/// Which operation fails, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of operation.
    pub op: Op,
    /// Fail the `nth` operation of that kind (1-based) on the watched files.
    pub nth: u64,
    /// The error reported.
    pub kind: FaultKind,
    /// Keep failing every later operation of that kind until disarmed.
    pub sticky: bool,
}

impl Fault {
    /// The SQLite result code the failing operation returns.
    pub fn code(&self) -> c_int {
        match (self.kind, self.op) {
            (FaultKind::DiskFull, _) => ffi::SQLITE_FULL,
            (FaultKind::Io, Op::Write) => ffi::SQLITE_IOERR_WRITE,
            (FaultKind::Io, Op::Sync) => ffi::SQLITE_IOERR_FSYNC,
            (FaultKind::Io, Op::Truncate) => ffi::SQLITE_IOERR_TRUNCATE,
        }
    }
}

/// Operations counted by a watch since it was created (or last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `xWrite` calls.
    pub writes: u64,
    /// `xSync` calls.
    pub syncs: u64,
    /// `xTruncate` calls.
    pub truncates: u64,
}

impl Counts {
    /// The count of one operation.
    pub fn of(&self, op: Op) -> u64 {
        match op {
            Op::Write => self.writes,
            Op::Sync => self.syncs,
            Op::Truncate => self.truncates,
        }
    }
}

/// The first operation an armed fault failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    /// The fault.
    pub fault: Fault,
    /// The file's name (last path component).
    pub file: String,
    /// How many operations were failed (more than one only for sticky faults).
    pub times: u64,
}

struct Plan {
    id: u64,
    prefixes: Vec<String>,
    /// Match the paths exactly (the main database file alone).
    exact: bool,
    counts: [u64; 3],
    paused: bool,
    fault: Option<Fault>,
    fired: Option<Fired>,
    trace: Option<Vec<(Op, String)>>,
}

fn plans() -> MutexGuard<'static, Vec<Plan>> {
    static PLANS: Mutex<Vec<Plan>> = Mutex::new(Vec::new());
    // A panicking test thread must not take the others down with it.
    PLANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The files of one or more databases whose operations are counted (and
/// failed when armed). Dropping it stops watching.
#[derive(Debug)]
pub struct Watch {
    id: u64,
}

impl Watch {
    /// Watch the databases at `paths` (and their `-wal`/`-journal` files).
    /// The paths need not exist yet; their directories must.
    pub fn new<P: AsRef<Path>>(paths: &[P]) -> Watch {
        Self::make(paths, false)
    }

    /// Watch only the main database files at `paths`, not their `-wal` or
    /// `-journal` files (in WAL mode: only checkpoints write there).
    pub fn main_files<P: AsRef<Path>>(paths: &[P]) -> Watch {
        Self::make(paths, true)
    }

    fn make<P: AsRef<Path>>(paths: &[P], exact: bool) -> Watch {
        install();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefixes = paths
            .iter()
            .map(|path| {
                let path = path.as_ref();
                let dir = path.parent().expect("a database path has a directory");
                let dir = std::fs::canonicalize(dir).expect("the database directory exists");
                let name = path.file_name().expect("a database path has a file name");
                dir.join(name).to_string_lossy().into_owned()
            })
            .collect();
        plans().push(Plan {
            id,
            prefixes,
            exact,
            counts: [0; 3],
            paused: false,
            fault: None,
            fired: None,
            trace: None,
        });
        Watch { id }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Plan) -> T) -> T {
        let mut plans = plans();
        let plan = plans
            .iter_mut()
            .find(|p| p.id == self.id)
            .expect("a live watch has a plan");
        f(plan)
    }

    /// Fail an operation as `fault` says (counting starts from now).
    pub fn arm(&self, fault: Fault) {
        assert!(fault.nth >= 1, "operations are counted from 1");
        self.with(|plan| {
            plan.counts = [0; 3];
            plan.fault = Some(fault);
            plan.fired = None;
        })
    }

    /// Stop failing operations (counting goes on).
    pub fn disarm(&self) {
        self.with(|plan| plan.fault = None)
    }

    /// Stop counting and failing until [`Watch::resume`] (for the test's
    /// own checks on the watched files).
    pub fn pause(&self) {
        self.with(|plan| plan.paused = true)
    }

    /// Count (and fail, if armed) again.
    pub fn resume(&self) {
        self.with(|plan| plan.paused = false)
    }

    /// Operations counted since the watch was made or last armed.
    pub fn counts(&self) -> Counts {
        self.with(|plan| Counts {
            writes: plan.counts[0],
            syncs: plan.counts[1],
            truncates: plan.counts[2],
        })
    }

    /// Record every counted operation from now on (see [`Watch::trace`]).
    pub fn start_trace(&self) {
        self.with(|plan| plan.trace = Some(Vec::new()))
    }

    /// The operations counted since [`Watch::start_trace`], in order, each
    /// with its file's name (last path component).
    pub fn trace(&self) -> Vec<(Op, String)> {
        self.with(|plan| plan.trace.clone().unwrap_or_default())
    }

    /// Whether (and where) the armed fault failed an operation.
    pub fn fired(&self) -> Option<Fired> {
        self.with(|plan| plan.fired.clone())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        plans().retain(|p| p.id != self.id);
    }
}

/// Count one operation on `path`; `Some(code)` if it must fail.
fn account(path: &str, op: Op) -> Option<c_int> {
    let mut plans = plans();
    let plan = plans.iter_mut().find(|p| {
        !p.paused
            && p.prefixes.iter().any(|prefix| {
                if p.exact {
                    path == prefix
                } else {
                    path.starts_with(prefix.as_str())
                }
            })
    })?;
    let file = || path.rsplit('/').next().unwrap_or(path).to_owned();
    if let Some(trace) = &mut plan.trace {
        trace.push((op, file()));
    }
    let count = &mut plan.counts[op.index()];
    *count += 1;
    let fault = plan.fault.filter(|f| f.op == op)?;
    let fails = *count == fault.nth || (fault.sticky && *count > fault.nth);
    if !fails {
        return None;
    }
    match &mut plan.fired {
        Some(fired) => fired.times += 1,
        None => {
            plan.fired = Some(Fired {
                fault,
                file: file(),
                times: 1,
            })
        }
    }
    Some(fault.code())
}

// ---- the VFS ---------------------------------------------------------------

const VFS_NAME: &CStr = c"careledger-faulty";

/// Our file: the wrapped VFS's file follows it in the same allocation.
#[repr(C)]
struct FaultyFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The file's full path (owned, from `Box::into_raw`), or null.
    path: *mut String,
}

struct Registered {
    real: *mut ffi::sqlite3_vfs,
    // Kept alive for SQLite, which holds pointers to them.
    _vfs: Box<ffi::sqlite3_vfs>,
}

// SAFETY: both pointers refer to VFS structs that live as long as the
// process and that SQLite itself uses from any thread.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Registered> = OnceLock::new();

fn real_vfs() -> *mut ffi::sqlite3_vfs {
    REGISTERED.get().expect("VFS installed").real
}

/// Register the shim as SQLite's default VFS (once per process). Connections
/// opened before this keep the VFS they were opened with.
pub fn install() {
    REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, a static
        // struct of SQLite's; we copy it and register the copy, which SQLite
        // keeps for the life of the process (the Box is never dropped).
        unsafe {
            assert_eq!(ffi::sqlite3_initialize(), ffi::SQLITE_OK);
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null(), "SQLite has a default VFS");
            let mut vfs = Box::new(std::ptr::read(real));
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = VFS_NAME.as_ptr();
            vfs.szOsFile = (std::mem::size_of::<FaultyFile>() as c_int) + (*real).szOsFile;
            vfs.xOpen = Some(x_open);
            let pointer: *mut ffi::sqlite3_vfs = &mut *vfs;
            let rc = ffi::sqlite3_vfs_register(pointer, 1);
            assert_eq!(rc, ffi::SQLITE_OK, "registering the fault-injection VFS");
            Registered { real, _vfs: vfs }
        }
    });
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real = real_vfs();
    let ours = file as *mut FaultyFile;
    let inner = (file as *mut u8).add(std::mem::size_of::<FaultyFile>()) as *mut ffi::sqlite3_file;
    (*ours).base.pMethods = std::ptr::null();
    (*ours).real = inner;
    (*ours).path = std::ptr::null_mut();
    (*inner).pMethods = std::ptr::null();
    let open = (*real).xOpen.expect("the default VFS opens files");
    let rc = open(real, name, inner, flags, out_flags);
    // SQLite calls xClose whenever pMethods is set, even if xOpen failed.
    if !(*inner).pMethods.is_null() {
        if !name.is_null() {
            let path = CStr::from_ptr(name).to_string_lossy().into_owned();
            (*ours).path = Box::into_raw(Box::new(path));
        }
        (*ours).base.pMethods = &METHODS;
    }
    rc
}

unsafe fn inner(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let real = (*(file as *mut FaultyFile)).real;
    (real, &*(*real).pMethods)
}

unsafe fn path_of(file: *mut ffi::sqlite3_file) -> Option<&'static str> {
    let path = (*(file as *mut FaultyFile)).path;
    (!path.is_null()).then(|| (*path).as_str())
}

unsafe fn injected(file: *mut ffi::sqlite3_file, op: Op) -> Option<c_int> {
    account(path_of(file)?, op)
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, methods) = inner(file);
    let rc = methods.xClose.map_or(ffi::SQLITE_OK, |f| f(real));
    let ours = file as *mut FaultyFile;
    if !(*ours).path.is_null() {
        drop(Box::from_raw((*ours).path));
        (*ours).path = std::ptr::null_mut();
    }
    rc
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xRead
        .map_or(ffi::SQLITE_IOERR_READ, |f| f(real, buf, amount, offset))
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    if let Some(code) = injected(file, Op::Write) {
        return code;
    }
    let (real, methods) = inner(file);
    methods
        .xWrite
        .map_or(ffi::SQLITE_IOERR_WRITE, |f| f(real, buf, amount, offset))
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    if let Some(code) = injected(file, Op::Truncate) {
        return code;
    }
    let (real, methods) = inner(file);
    methods
        .xTruncate
        .map_or(ffi::SQLITE_IOERR_TRUNCATE, |f| f(real, size))
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    if let Some(code) = injected(file, Op::Sync) {
        return code;
    }
    let (real, methods) = inner(file);
    methods
        .xSync
        .map_or(ffi::SQLITE_IOERR_FSYNC, |f| f(real, flags))
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xFileSize
        .map_or(ffi::SQLITE_IOERR_FSTAT, |f| f(real, size))
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xLock
        .map_or(ffi::SQLITE_IOERR_LOCK, |f| f(real, level))
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xUnlock
        .map_or(ffi::SQLITE_IOERR_UNLOCK, |f| f(real, level))
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xCheckReservedLock
        .map_or(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, |f| f(real, out))
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (real, methods) = inner(file);
    methods
        .xFileControl
        .map_or(ffi::SQLITE_NOTFOUND, |f| f(real, op, arg))
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, methods) = inner(file);
    methods.xSectorSize.map_or(4096, |f| f(real))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, methods) = inner(file);
    methods.xDeviceCharacteristics.map_or(0, |f| f(real))
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (real, methods) = inner(file);
    if methods.iVersion < 2 {
        return ffi::SQLITE_IOERR_SHMMAP;
    }
    methods.xShmMap.map_or(ffi::SQLITE_IOERR_SHMMAP, |f| {
        f(real, region, size, extend, out)
    })
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (real, methods) = inner(file);
    if methods.iVersion < 2 {
        return ffi::SQLITE_IOERR_SHMLOCK;
    }
    methods
        .xShmLock
        .map_or(ffi::SQLITE_IOERR_SHMLOCK, |f| f(real, offset, n, flags))
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (real, methods) = inner(file);
    if methods.iVersion >= 2 {
        if let Some(f) = methods.xShmBarrier {
            f(real)
        }
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (real, methods) = inner(file);
    if methods.iVersion < 2 {
        return ffi::SQLITE_OK;
    }
    methods
        .xShmUnmap
        .map_or(ffi::SQLITE_OK, |f| f(real, delete))
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (real, methods) = inner(file);
    if methods.iVersion < 3 {
        *out = std::ptr::null_mut();
        return ffi::SQLITE_OK;
    }
    match methods.xFetch {
        Some(f) => f(real, offset, amount, out),
        None => {
            *out = std::ptr::null_mut();
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    let (real, methods) = inner(file);
    if methods.iVersion < 3 {
        return ffi::SQLITE_OK;
    }
    methods
        .xUnfetch
        .map_or(ffi::SQLITE_OK, |f| f(real, offset, page))
}

/// The name the shim is registered under.
pub fn vfs_name() -> &'static str {
    VFS_NAME.to_str().expect("ASCII")
}
