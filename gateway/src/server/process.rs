//! Process-wide settings applied once at start, before any thread is spawned: the open-file limit,
//! how glibc's malloc treats large allocations, and which crypto TLS uses.

/// Raises the soft limit on open files to the hard limit and returns the new soft limit. Every proxied
/// request or stream holds two descriptors (the client's and the backend's), so the usual soft limit
/// of 1,024 would cap the gateway near 500 concurrent SSE streams whatever the machine allows.
pub(crate) fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Keeps large allocations out of glibc's heap arenas. glibc serves an allocation over its mmap
/// threshold with a mapping of its own, but by default raises the threshold to the size of each such
/// mapping freed. A local login's argon2id hash takes 19 MiB; after the first one, every later one was
/// carved from a thread's arena, and the arena kept it: 16 logins left the gateway at 200 MiB of RSS.
/// A fixed threshold turns the adjustment off, so those 19 MiB go back to the system after each hash.
/// The hot path's largest buffers (64 KiB) stay below it.
pub(crate) fn return_large_allocations() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes a malloc parameter; called before other threads exist.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Makes `ring` the process's TLS crypto for rustls, as Pingora's own TLS does. This build has two
/// providers compiled in (reqwest's brings aws-lc-rs), so rustls cannot pick one by itself, and the
/// Redis client, which asks rustls for the process's provider, panicked on every `rediss://` URL.
pub(crate) fn choose_tls_provider() {
    pingora::tls::install_default_crypto_provider();
}
