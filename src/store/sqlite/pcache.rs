//! SQLite's own page cache, with one key renamed so that a B-tree split
//! does not make the next COMMIT scan the whole cache.
//!
//! When a split reorders its new pages (`balance_nonroot`), SQLite swaps two
//! pages' numbers through a temporary one, the pending-byte page
//! (`PENDING_BYTE / page_size + 1`: page 1,048,577 with 1 KiB pages), which
//! no database ever stores data in. The default cache (`pcache1`) remembers
//! the largest key it has held, and every COMMIT truncates the cache to the
//! database's size: when that largest key is far above the size (as the
//! pending-byte page is for any database under 1 GiB), it scans every hash
//! slot of the cache instead of the few keys above the size. On the writer
//! (16 MiB of cache, a split every few commits at 10,000 messages/s) that
//! scan was 4.4% of the server's CPU (BENCHMARKS.md).
//!
//! This wrapper hands every call to the default cache unchanged, except
//! that the temporary key is passed down as key 0, which SQLite never uses
//! for a page (page numbers start at 1) and which is below any truncation
//! limit. The renaming is the same in every call that takes a key (fetch,
//! rekey), so the default cache sees a page parked at 0 instead of at the
//! pending-byte page for the length of the swap, and its largest key stays
//! what the database really holds.
//!
//! The cache is process-wide SQLite configuration: [`install`] must run
//! before SQLite is first initialized (the first connection opened); later
//! it does nothing and says so.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::ffi;

/// SQLite's `PENDING_BYTE` (the default; hubbub never moves it).
const PENDING_BYTE: u32 = 0x4000_0000;

/// The default page cache's methods, read once before ours replace them.
static INNER: OnceLock<Methods> = OnceLock::new();

/// SQLite's method table: function pointers and `pArg`, which the default
/// cache does not use (null) and which SQLite passes back as it is.
struct Methods(ffi::sqlite3_pcache_methods2);
// SAFETY: the table is written once before it is shared and only read
// after; SQLite itself calls these methods from any thread.
unsafe impl Send for Methods {}
unsafe impl Sync for Methods {}
/// Whether [`install`] replaced the cache (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// Keys renamed so far (for tests: proof that splits went through it).
static RENAMED: AtomicU64 = AtomicU64::new(0);

/// One cache: the default cache's handle and this cache's temporary key.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    temp_key: c_uint,
}

/// Puts the wrapper in place of SQLite's default page cache, once per
/// process. Returns whether it is in place: `false` when SQLite was
/// already initialized before the first call (then the default cache
/// stays, which is correct, only slower).
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sqlite3_config is called with the argument types each
        // option documents (a pointer to a methods struct); SQLite copies
        // the struct. It refuses (SQLITE_MISUSE) once initialized, and
        // then nothing was changed.
        unsafe {
            let mut inner: ffi::sqlite3_pcache_methods2 = std::mem::zeroed();
            if ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, &mut inner as *mut _) != ffi::SQLITE_OK
                || inner.xCreate.is_none()
            {
                return false;
            }
            let inner = &INNER.get_or_init(|| Methods(inner)).0;
            let ours = ffi::sqlite3_pcache_methods2 {
                iVersion: inner.iVersion,
                pArg: std::ptr::null_mut(),
                xInit: Some(x_init),
                xShutdown: Some(x_shutdown),
                xCreate: Some(x_create),
                xCachesize: Some(x_cachesize),
                xPagecount: Some(x_pagecount),
                xFetch: Some(x_fetch),
                xUnpin: Some(x_unpin),
                xRekey: Some(x_rekey),
                xTruncate: Some(x_truncate),
                xDestroy: Some(x_destroy),
                xShrink: inner.xShrink.map(|_| x_shrink as unsafe extern "C" fn(*mut ffi::sqlite3_pcache)),
            };
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &ours as *const _) == ffi::SQLITE_OK
        }
    })
}

/// How many times a key was renamed since the process started.
pub fn renamed() -> u64 {
    RENAMED.load(Ordering::Relaxed)
}

fn inner() -> &'static ffi::sqlite3_pcache_methods2 {
    // Our methods are only ever called after `install` stored them.
    &INNER.get().unwrap_or_else(|| unreachable!("page cache methods called before install")).0
}

/// The key the default cache is given for `key` in `cache`.
fn key_for(cache: &Cache, key: c_uint) -> c_uint {
    if key == cache.temp_key {
        RENAMED.fetch_add(1, Ordering::Relaxed);
        0
    } else {
        key
    }
}

// SAFETY (all below): SQLite calls these with the handles `x_create`
// returned (a leaked `Box<Cache>`) and the pages the default cache gave
// out; each hands the call on to the default cache with its own handle.

unsafe extern "C" fn x_init(_arg: *mut c_void) -> c_int {
    let m = inner();
    match m.xInit {
        Some(f) => unsafe { f(m.pArg) },
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_shutdown(_arg: *mut c_void) {
    let m = inner();
    if let Some(f) = m.xShutdown {
        unsafe { f(m.pArg) }
    }
}

unsafe extern "C" fn x_create(sz_page: c_int, sz_extra: c_int, purgeable: c_int) -> *mut ffi::sqlite3_pcache {
    let Some(create) = inner().xCreate else { return std::ptr::null_mut() };
    let handle = unsafe { create(sz_page, sz_extra, purgeable) };
    if handle.is_null() {
        return handle;
    }
    // Page sizes are powers of two from 512 to 65,536.
    let temp_key = PENDING_BYTE / (sz_page.max(1) as u32) + 1;
    Box::into_raw(Box::new(Cache { inner: handle, temp_key })) as *mut ffi::sqlite3_pcache
}

/// The wrapper behind a handle `x_create` returned.
///
/// SAFETY: `p` must be such a handle, not yet destroyed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a Cache {
    unsafe { &*(p as *const Cache) }
}

unsafe extern "C" fn x_cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    if let Some(f) = inner().xCachesize {
        unsafe { f(cache(p).inner, n) }
    }
}

unsafe extern "C" fn x_pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    match inner().xPagecount {
        Some(f) => unsafe { f(cache(p).inner) },
        None => 0,
    }
}

unsafe extern "C" fn x_fetch(p: *mut ffi::sqlite3_pcache, key: c_uint, create: c_int) -> *mut ffi::sqlite3_pcache_page {
    let Some(f) = inner().xFetch else { return std::ptr::null_mut() };
    let c = unsafe { cache(p) };
    unsafe { f(c.inner, key_for(c, key), create) }
}

unsafe extern "C" fn x_unpin(p: *mut ffi::sqlite3_pcache, page: *mut ffi::sqlite3_pcache_page, discard: c_int) {
    if let Some(f) = inner().xUnpin {
        unsafe { f(cache(p).inner, page, discard) }
    }
}

unsafe extern "C" fn x_rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    if let Some(f) = inner().xRekey {
        let c = unsafe { cache(p) };
        unsafe { f(c.inner, page, key_for(c, old), key_for(c, new)) }
    }
}

unsafe extern "C" fn x_truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    if let Some(f) = inner().xTruncate {
        unsafe { f(cache(p).inner, limit) }
    }
}

unsafe extern "C" fn x_destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: SQLite destroys each cache once; the box is ours from x_create.
    let c = unsafe { Box::from_raw(p as *mut Cache) };
    if let Some(f) = inner().xDestroy {
        unsafe { f(c.inner) }
    }
}

unsafe extern "C" fn x_shrink(p: *mut ffi::sqlite3_pcache) {
    if let Some(f) = inner().xShrink {
        unsafe { f(cache(p).inner) }
    }
}
