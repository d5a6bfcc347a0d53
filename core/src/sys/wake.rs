//! Wake-ups between processes: one Unix datagram socket per session, bound to an abstract name
//! derived from the queue id and a per-session id. Its descriptor is the session's pollable fd
//! (libpq's `PQsocket`, I8). Any process can send to it without owning a file, a dead receiver
//! only makes `sendto` fail (no SIGPIPE), and nothing is left on disk after a crash.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct WakeSocket {
    fd: OwnedFd,
}

fn address(queue_id: u64, sock_id: u64) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = format!("hark.{queue_id:016x}.{sock_id:016x}");
    // sun_path[0] stays 0: the abstract namespace.
    for (i, b) in name.bytes().enumerate() {
        addr.sun_path[1 + i] = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    (addr, len as libc::socklen_t)
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; result checked.
    let fd = unsafe {
        libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is freshly created and owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl WakeSocket {
    /// Creates the receiving socket of a session.
    pub fn bind(queue_id: u64, sock_id: u64) -> io::Result<WakeSocket> {
        let fd = socket()?;
        let (addr, len) = address(queue_id, sock_id);
        // SAFETY: addr is a valid sockaddr_un of length len.
        let r = unsafe { libc::bind(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(WakeSocket { fd })
    }

    /// Reads and discards every pending wake-up datagram, clearing readability.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe {
                libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_DONTWAIT)
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The sending side: an unbound datagram socket a session uses to wake others.
pub struct WakeSender {
    fd: OwnedFd,
}

/// What a wake-up attempt found.
pub enum Sent {
    /// Delivered, or the receiver already has unread wake-ups.
    Ok,
    /// Nobody is bound to the name: the receiver is gone.
    Gone,
}

impl WakeSender {
    pub fn new() -> io::Result<WakeSender> {
        Ok(WakeSender { fd: socket()? })
    }

    pub fn send(&self, queue_id: u64, sock_id: u64) -> Sent {
        let (addr, len) = address(queue_id, sock_id);
        let byte = [1u8];
        loop {
            // SAFETY: valid buffer and address.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    byte.as_ptr() as *const libc::c_void,
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    &addr as *const _ as *const libc::sockaddr,
                    len,
                )
            };
            if r >= 0 {
                return Sent::Ok;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => return Sent::Gone,
                // EAGAIN: the receiver's buffer is full of wake-ups already.
                _ => return Sent::Ok,
            }
        }
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes (-1: forever). Returns whether readable.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r > 0)
}
