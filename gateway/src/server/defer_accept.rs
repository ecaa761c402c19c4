//! `TCP_DEFER_ACCEPT` on the public listener, which Pingora's listener options lack: the kernel hands
//! a connection over only once its first bytes (a request, a TLS hello) have arrived. When the
//! gateway stops or hands its sockets to a new one, Pingora closes every connection whose request it
//! has not read yet; without this, a connection accepted in that instant, its request a moment
//! behind, was closed unread and the request lost. With it, what was accepted can be read at once.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How long to wait at most for the first data of a connection before accepting it anyway (the
/// kernel then hands it over, so a client that waits for the server to speak first is served).
const DEFER_SECS: libc::c_int = 10;

/// Finds the socket listening on `address` among the process's descriptors and sets the option.
/// `Ok(false)` when none listens there (yet).
fn defer(address: SocketAddr) -> std::io::Result<bool> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        if local_address(fd) != Some(address) || !listening(fd) {
            continue;
        }
        // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from a live local; on a descriptor
        // that is not a TCP socket it fails with an error and changes nothing.
        #[allow(unsafe_code)]
        let set = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                std::ptr::from_ref(&DEFER_SECS).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(true);
    }
    Ok(false)
}

/// The address a descriptor is bound to, if it is an IP socket.
fn local_address(fd: libc::c_int) -> Option<SocketAddr> {
    let mut storage: libc::sockaddr_storage = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname(2) writes at most `len` bytes into `storage`, which is that large.
    #[allow(unsafe_code)]
    let got = unsafe {
        libc::getsockname(
            fd,
            std::ptr::from_mut(&mut storage).cast(),
            std::ptr::from_mut(&mut len),
        )
    };
    if got != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says `storage` holds a sockaddr_in, which it is large enough for.
            #[allow(unsafe_code)]
            let v4 = unsafe { *std::ptr::from_ref(&storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::from((
                u32::from_be(v4.sin_addr.s_addr).to_be_bytes(),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a sockaddr_in6.
            #[allow(unsafe_code)]
            let v6 = unsafe { *std::ptr::from_ref(&storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::from((
                v6.sin6_addr.s6_addr,
                u16::from_be(v6.sin6_port),
            )))
        }
        _ => None,
    }
}

/// Whether a socket is listening (`SO_ACCEPTCONN`).
fn listening(fd: libc::c_int) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `value`, which is that large.
    #[allow(unsafe_code)]
    let got = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            std::ptr::from_mut(&mut value).cast(),
            std::ptr::from_mut(&mut len),
        )
    };
    got == 0 && value != 0
}

/// An all-zero `sockaddr_storage`, a valid value of that plain C struct.
fn unsafe_zeroed() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data, for which all zeroes is a valid value.
    #[allow(unsafe_code)]
    unsafe {
        std::mem::zeroed()
    }
}

/// Sets the option once Pingora has bound (or inherited) the listener.
pub(crate) struct DeferAccept(pub SocketAddr);

#[async_trait]
impl BackgroundService for DeferAccept {
    async fn start(&self, _shutdown: ShutdownWatch) {
        // The listening service binds as it starts, beside this one: look until it has.
        for _ in 0..100 {
            match defer(self.0) {
                Ok(true) => return,
                Ok(false) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => {
                    tracing::warn!("cannot set TCP_DEFER_ACCEPT on {}: {error}", self.0);
                    return;
                }
            }
        }
        tracing::warn!("no listener on {} to set TCP_DEFER_ACCEPT on", self.0);
    }
}
