//! Wake-ups between processes: one Unix datagram socket per session. Its descriptor is the
//! session's pollable fd (libpq's `PQsocket`, I8). When the session first listens, the socket is
//! bound to a file `w.<id>` in the queue directory, so the directory's permissions decide who may
//! send to it: other users cannot wake (or flood) a listener of a private queue, and sockets work
//! across network namespaces. Files are reached as `/proc/self/fd/<dir>/w.<id>`, which fits
//! `sun_path` whatever the directory's path, and resolves through the directory descriptor every
//! process of the queue holds. A dead receiver only makes `sendto` fail (no SIGPIPE); its file is
//! removed by whoever reaps its listener slot, or by the next sweep (`Queue::sweep_sockets`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct WakeSocket {
    fd: OwnedFd,
    /// The directory the socket's file was bound in, when it is.
    bound: Option<(RawFd, u64)>,
}

/// The file name of the socket with id `sock_id`.
pub fn socket_name(sock_id: u64) -> String {
    format!("w.{sock_id:016x}")
}

/// Whether a directory entry is a wake-up socket's file; its id if so.
pub fn parse_socket_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("w.")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn address(dir: RawFd, sock_id: u64) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = format!("/proc/self/fd/{dir}/{}", socket_name(sock_id));
    // At most 14 + 10 + 1 + 18 bytes: always fits the 108 of sun_path, with its NUL.
    for (i, b) in path.bytes().enumerate() {
        addr.sun_path[i] = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    (addr, len as libc::socklen_t)
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; result checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is freshly created and owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl WakeSocket {
    /// Creates the receiving socket of a session, not yet reachable.
    pub fn new() -> io::Result<WakeSocket> {
        Ok(WakeSocket { fd: socket()?, bound: None })
    }

    /// Makes the socket reachable as `w.<sock_id>` in the directory `dir`, with file mode `mode`
    /// (0600, or 0660 in a group-shared queue, whose group `gid` the file is given so that every
    /// member may send to it). Done once; later calls do nothing.
    pub fn bind(&mut self, dir: RawFd, sock_id: u64, mode: libc::mode_t, gid: Option<u32>) -> io::Result<()> {
        if self.bound.is_some() {
            return Ok(());
        }
        let (addr, len) = address(dir, sock_id);
        let name = std::ffi::CString::new(socket_name(sock_id)).expect("no NUL");
        // A file of that name can only be a leftover of a dead session with the same random id.
        // SAFETY: valid dirfd and C string.
        unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
        // SAFETY: addr is a valid sockaddr_un of length len.
        let r = unsafe { libc::bind(self.fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        self.bound = Some((dir, sock_id));
        // bind's mode follows the umask; set it exactly (the directory already keeps others out).
        // SAFETY: valid dirfd and C string.
        if unsafe { libc::fchmodat(dir, name.as_ptr(), mode, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(gid) = gid {
            // The directory's setgid bit normally does this; it may have been lost.
            // SAFETY: valid dirfd and C string; uid -1 keeps the owner.
            if unsafe { libc::fchownat(dir, name.as_ptr(), u32::MAX, gid, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Removes the socket's file, if it was bound (at close).
    pub fn unlink(&mut self) {
        if let Some((dir, sock_id)) = self.bound.take() {
            let name = std::ffi::CString::new(socket_name(sock_id)).expect("no NUL");
            // SAFETY: valid dirfd (the queue's, alive as long as the session) and C string.
            unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
        }
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

/// The sending side. Resolving a socket file's path costs about a microsecond per `sendto`, so
/// the sender keeps sockets connected to the first listeners it wakes: a wake-up is then one
/// `send` with no path lookup. A connected socket whose listener is gone fails with
/// `ECONNREFUSED` and is dropped, making room. Past that many, a listener is woken by `sendto`
/// its path through one unconnected socket: one system call, where replacing a cached socket
/// takes four (socket, connect, send, close), at every wake-up of a broadcast to more listeners
/// than the cache holds if each replaced the oldest (it would evict the next one to be woken).
/// One miss in `RENEW` replaces the oldest all the same, so that sockets of listeners that left
/// without being woken again do not hold the cache for good.
pub struct WakeSender {
    connected: std::sync::Mutex<(Vec<(u64, OwnedFd)>, u32)>,
    unconnected: OwnedFd,
}

/// Listeners a sender keeps a connected socket to.
const CONNECTED: usize = 32;
/// With the cache full, one miss in this many replaces its oldest socket.
const RENEW: u32 = 64;

/// What a wake-up attempt found.
pub enum Sent {
    /// Delivered, or the receiver already has unread wake-ups.
    Ok,
    /// Nobody is bound to the name: the receiver is gone.
    Gone,
}

fn send_byte(fd: RawFd) -> Sent {
    let byte = [1u8];
    loop {
        // SAFETY: valid fd and buffer.
        let r =
            unsafe { libc::send(fd, byte.as_ptr() as *const libc::c_void, 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Sent::Ok;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT) | Some(libc::ENOTCONN) => return Sent::Gone,
            // EAGAIN: the receiver's buffer is full of wake-ups already.
            _ => return Sent::Ok,
        }
    }
}

/// One wake-up to the socket file of `sock_id`, by its path, through the unconnected `fd`.
fn send_byte_to(fd: RawFd, dir: RawFd, sock_id: u64) -> Sent {
    let (addr, len) = address(dir, sock_id);
    let byte = [1u8];
    loop {
        // SAFETY: valid fd, buffer and address.
        let r = unsafe {
            libc::sendto(
                fd,
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
            _ => return Sent::Ok,
        }
    }
}

fn connect(dir: RawFd, sock_id: u64) -> Option<OwnedFd> {
    let fd = socket().ok()?;
    let (addr, len) = address(dir, sock_id);
    // SAFETY: valid fd and address.
    let r = unsafe { libc::connect(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, len) };
    (r == 0).then_some(fd)
}

impl WakeSender {
    pub fn new() -> io::Result<WakeSender> {
        Ok(WakeSender { connected: std::sync::Mutex::new((Vec::new(), 0)), unconnected: socket()? })
    }

    /// Sends one wake-up to the socket `w.<sock_id>` of the directory `dir`.
    pub fn send(&self, dir: RawFd, sock_id: u64) -> Sent {
        let mut guard = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        let (cache, misses) = &mut *guard;
        let i = match cache.iter().position(|(id, _)| *id == sock_id) {
            Some(i) => i,
            None => {
                if cache.len() == CONNECTED {
                    *misses = misses.wrapping_add(1);
                    if *misses % RENEW != 0 {
                        drop(guard);
                        return send_byte_to(self.unconnected.as_raw_fd(), dir, sock_id);
                    }
                    cache.remove(0);
                }
                let Some(fd) = connect(dir, sock_id) else { return Sent::Gone };
                cache.push((sock_id, fd));
                cache.len() - 1
            }
        };
        let sent = send_byte(cache[i].1.as_raw_fd());
        if matches!(sent, Sent::Gone) {
            cache.swap_remove(i);
        }
        sent
    }

    /// Whether a socket is bound to `w.<sock_id>`: connecting a datagram socket sends nothing,
    /// and fails with `ECONNREFUSED` when the file's socket is gone.
    pub fn is_bound(&self, dir: RawFd, sock_id: u64) -> bool {
        if connect(dir, sock_id).is_some() {
            return true;
        }
        !matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENOENT))
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
