//! Where `hark serve` accepts connections: a loopback TCP port, or a Unix socket (`--unix PATH`)
//! that only its owner can connect to.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// A client connection, over TCP or a Unix socket.
pub trait Conn: Read + Write + Send + Sized + 'static {
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

macro_rules! conn_for {
    ($t:ty) => {
        impl Conn for $t {
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$t>::shutdown(self, how)
            }
            fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
                <$t>::set_read_timeout(self, d)
            }
            fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
                <$t>::set_write_timeout(self, d)
            }
            fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                <$t>::set_nonblocking(self, on)
            }
        }
    };
}

conn_for!(TcpStream);
conn_for!(UnixStream);

/// Binds a Unix socket at `path` that only this user can connect to.
///
/// Connecting needs write permission on the socket file, so it is created 0600 (the umask is
/// narrowed around `bind`, so that it is never open to others, not even for an instant). Its
/// directory must be this user's and writable by no one else, or another user could put their own
/// socket in its place. A socket file left by a server that is gone is replaced; a live one is not.
pub fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !dir.is_dir() || dir.uid() != me || dir.mode() & 0o022 != 0 {
        return Err(format!(
            "the socket's directory {} must be yours and writable by you only (it is uid {}, mode {:04o})",
            parent.display(),
            dir.uid(),
            dir.mode() & 0o7777
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && m.uid() == me => {
            if UnixStream::connect(path).is_ok() {
                return Err(format!("{shown} is in use by another server"));
            }
            std::fs::remove_file(path).map_err(|e| format!("could not remove the stale socket {shown}: {e}"))?;
        }
        Ok(_) => return Err(format!("{shown} exists and is not a socket of yours")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    // SAFETY: umask only swaps the process's creation mask; it is restored right after bind.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| format!("could not bind {shown}: {e}"))?;
    // Belt and braces: whatever the umask did, the socket ends 0600.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{shown}: {e}"))?;
    Ok(listener)
}
