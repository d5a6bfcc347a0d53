//! Files of the queue directory, opened relative to a directory descriptor and checked (I10).

use crate::error::{Error, Result};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The queue directory, held open so that every file is reached through it (no path races).
pub struct Dir {
    fd: OwnedFd,
    pub group_shared: bool,
    pub uid: u32,
    pub gid: u32,
}

fn cstr(name: &str) -> CString {
    CString::new(name).expect("hark's own file names have no NUL")
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

impl Dir {
    /// Opens `path`, creating it (0700, or 02770 when group-shared) if missing and `create` is
    /// set, and refuses a symbolic link in its place, a directory that another user owns (unless
    /// group-shared and of a group of ours), or one that others can write (I10). Owner and mode
    /// are checked on the opened descriptor, so what is checked is what is used.
    /// `shared_default`: `path` is the default `hark-<uid>` in a directory every user can write,
    /// which must be the caller's own directory even when group-shared; when another user took
    /// it, the error says what to do.
    pub fn open(path: &Path, group_shared: bool, shared_default: bool, create: bool) -> Result<Dir> {
        let shown = path.display();
        let taken = |e: Error| if shared_default { e.with_hint(crate::options::SHARED_DEFAULT_HINT) } else { e };
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::invalid("queue directory path contains a NUL byte"))?;
        // Group-shared: setgid, so that every file made in it gets the directory's group rather
        // than its creator's primary group, which the other members may not be in.
        let mode = if group_shared { 0o2770 } else { 0o700 };
        // SAFETY: c is a valid C string.
        let made = create && unsafe { libc::mkdir(c.as_ptr(), mode & 0o777) } == 0;
        if create && !made {
            let e = errno();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(Error::io(format_args!("create queue directory \"{shown}\""), e));
            }
        }
        // O_NOFOLLOW: a symlink planted in place of the directory (in /dev/shm, say) must not
        // lead this process to create, use or wipe files in a directory the link points to.
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: c is a valid C string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            let e = errno();
            if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
                if let Ok(target) = std::fs::read_link(path) {
                    return Err(taken(
                        Error::unsafe_path(format!(
                            "queue directory \"{shown}\" is a symbolic link (to \"{}\")",
                            target.display()
                        ))
                        .with_hint("hark does not follow a symbolic link in place of the queue directory: give the directory it points to, if you trust it."),
                    ));
                }
                if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
                    return Err(taken(Error::unsafe_path(format!("queue directory \"{shown}\" is not a directory"))));
                }
            }
            if e.raw_os_error() == Some(libc::EACCES) {
                // Say whose it is (a private directory of another user cannot even be opened).
                if let Some(owner) = std::fs::symlink_metadata(path).ok().map(|m| m.uid()).filter(|&o| o != uid) {
                    return Err(taken(Error::unsafe_path(format!(
                        "queue directory \"{shown}\" is owned by another user (uid {owner})"
                    ))));
                }
            }
            if !create && e.raw_os_error() == Some(libc::ENOENT) {
                return Err(crate::queue::no_queue(path).with_detail(format!("There is no directory \"{shown}\".")));
            }
            return Err(Error::io(format_args!("open queue directory \"{shown}\""), e));
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if made {
            // mkdir's mode is filtered by the umask and cannot set the setgid bit; set it exactly.
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), mode) };
        }
        let st = fstat(fd.as_raw_fd()).map_err(|e| Error::io(format_args!("stat \"{shown}\""), e))?;
        if st.st_uid != uid && (shared_default || !(group_shared && in_group(st.st_gid))) {
            return Err(taken(Error::unsafe_path(format!(
                "queue directory \"{shown}\" is owned by another user (uid {})",
                st.st_uid
            ))));
        }
        let perm = st.st_mode & 0o777;
        if perm & 0o002 != 0 {
            return Err(Error::unsafe_path(format!(
                "queue directory \"{shown}\" is writable by every user (mode {perm:04o})"
            )));
        }
        if !group_shared && perm & 0o020 != 0 {
            return Err(Error::unsafe_path(format!(
                "queue directory \"{shown}\" is writable by its group (mode {perm:04o})"
            ))
            .with_hint(
                "Open it with the group_shared option (the hark command's --group-shared) to share a queue \
                 between users of one group, or chmod g-w.",
            ));
        }
        if group_shared && st.st_uid == uid && st.st_mode & libc::S_ISGID == 0 {
            // An existing directory of ours: new files should get its group without help.
            // (Each file's group is checked and set anyway, so a failure here changes nothing.)
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), st.st_mode & 0o7777 | libc::S_ISGID) };
        }
        Ok(Dir { fd, group_shared, uid: st.st_uid, gid: st.st_gid })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn file_mode(&self) -> libc::mode_t {
        if self.group_shared {
            0o660
        } else {
            0o600
        }
    }

    /// Opens (or with `create`, creates) a regular file in the directory, never following a
    /// symlink, and checks its owner and mode. Returns `Ok(None)` when it does not exist.
    pub fn open_file(&self, name: &str, create: bool) -> Result<Option<OwnedFd>> {
        let c = cstr(name);
        let mut flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        if create {
            flags |= libc::O_CREAT;
        }
        // SAFETY: valid dirfd and C string; result checked.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags, self.file_mode() as libc::c_uint) };
        if fd < 0 {
            let e = errno();
            return match e.raw_os_error() {
                Some(libc::ENOENT) if !create => Ok(None),
                Some(libc::ELOOP) => {
                    Err(Error::unsafe_path(format!("\"{name}\" in the queue directory is a symbolic link")))
                }
                _ => Err(Error::io(format_args!("open \"{name}\""), e)),
            };
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = fstat(fd.as_raw_fd()).map_err(|e| Error::io(format_args!("stat \"{name}\""), e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::unsafe_path(format!("\"{name}\" in the queue directory is not a regular file")));
        }
        self.check_owner(name, &fd, &st)?;
        if st.st_mode & 0o777 != self.file_mode() {
            // Ours (just created under a umask, or from an older run): make the mode exact.
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), self.file_mode()) };
        }
        Ok(Some(fd))
    }

    /// Creates a fresh file that must not exist yet.
    pub fn create_new(&self, name: &str) -> Result<OwnedFd> {
        let c = cstr(name);
        let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_CREAT | libc::O_EXCL;
        // SAFETY: valid dirfd and C string; result checked.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags, self.file_mode() as libc::c_uint) };
        if fd < 0 {
            return Err(Error::io(format_args!("create \"{name}\""), errno()));
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: valid fd.
        unsafe { libc::fchmod(fd.as_raw_fd(), self.file_mode()) };
        let st = fstat(fd.as_raw_fd()).map_err(|e| Error::io(format_args!("stat \"{name}\""), e))?;
        self.check_owner(name, &fd, &st)?;
        Ok(fd)
    }

    /// Checks that a file opened in the directory belongs to the queue: to the directory's owner,
    /// or when group-shared, to the directory's group, which a file of ours is given if it lacks
    /// it (it has its creator's primary group when the directory's setgid bit was lost), so that
    /// every member can open every file.
    fn check_owner(&self, name: &str, fd: &OwnedFd, st: &libc::stat) -> Result<()> {
        if !self.group_shared {
            if st.st_uid != self.uid {
                return Err(Error::unsafe_path(format!(
                    "\"{name}\" in the queue directory is owned by another user (uid {})",
                    st.st_uid
                )));
            }
            return Ok(());
        }
        if st.st_gid == self.gid {
            return Ok(());
        }
        // SAFETY: geteuid cannot fail.
        if st.st_uid != unsafe { libc::geteuid() } {
            return Err(Error::unsafe_path(format!(
                "\"{name}\" in the shared queue directory belongs to group {} (uid {}), not to the directory's group {}",
                st.st_gid, st.st_uid, self.gid
            ))
            .with_hint("Every file of a group-shared queue must have the directory's group; its owner can chgrp it."));
        }
        // SAFETY: valid fd; uid -1 leaves the owner unchanged.
        if unsafe { libc::fchown(fd.as_raw_fd(), u32::MAX, self.gid) } != 0 {
            return Err(Error::io(
                format_args!("give \"{name}\" the queue directory's group {} (a group you are not in?)", self.gid),
                errno(),
            ));
        }
        Ok(())
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (a, b) = (cstr(from), cstr(to));
        // SAFETY: valid dirfd and C strings.
        if unsafe { libc::renameat(self.raw(), a.as_ptr(), self.raw(), b.as_ptr()) } != 0 {
            return Err(Error::io(format_args!("rename \"{from}\" to \"{to}\""), errno()));
        }
        Ok(())
    }

    /// Whether `name` is a regular file (not following a symlink).
    pub fn is_regular_file(&self, name: &str) -> bool {
        let c = cstr(name);
        // SAFETY: valid dirfd and C string; fstatat fills the zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG
    }

    /// Whether `name` is a regular file of the queue (owned as `check_owner` wants), judged on a
    /// descriptor that follows no symlink and opens nothing for reading or writing (`O_PATH`: a
    /// FIFO or a device is not opened). `None` when nothing is there.
    pub fn is_queue_file(&self, name: &str) -> Option<bool> {
        let c = cstr(name);
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid dirfd and C string; result checked.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags) };
        if fd < 0 {
            return if errno().raw_os_error() == Some(libc::ENOENT) { None } else { Some(false) };
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let Ok(st) = fstat(fd.as_raw_fd()) else { return Some(false) };
        // SAFETY: geteuid cannot fail.
        let ours = if self.group_shared {
            st.st_gid == self.gid || st.st_uid == unsafe { libc::geteuid() }
        } else {
            st.st_uid == self.uid
        };
        Some(st.st_mode & libc::S_IFMT == libc::S_IFREG && ours)
    }

    /// Removes whatever is at `name` (a file, a link, a FIFO or an empty directory; never what a
    /// link points to); a missing entry is not an error.
    pub fn remove_entry(&self, name: &str) -> Result<()> {
        let c = cstr(name);
        // SAFETY: valid dirfd and C string.
        let mut r = unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) };
        if r != 0 && errno().raw_os_error() == Some(libc::EISDIR) {
            // SAFETY: as above.
            r = unsafe { libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR) };
        }
        if r != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(Error::io(format_args!("remove \"{name}\""), e));
            }
        }
        Ok(())
    }

    /// Renames `from` to `to` unless `to` exists. Returns whether it did: `false` when `to`
    /// exists, `from` does not, or the file system cannot rename without replacing.
    pub fn rename_noreplace(&self, from: &str, to: &str) -> Result<bool> {
        let (a, b) = (cstr(from), cstr(to));
        // SAFETY: valid dirfd and C strings; renameat2 through syscall() works with any libc.
        let r = unsafe {
            libc::syscall(libc::SYS_renameat2, self.raw(), a.as_ptr(), self.raw(), b.as_ptr(), libc::RENAME_NOREPLACE)
        };
        if r == 0 {
            return Ok(true);
        }
        let e = errno();
        match e.raw_os_error() {
            Some(libc::EEXIST | libc::ENOENT | libc::EINVAL | libc::ENOSYS) => Ok(false),
            _ => Err(Error::io(format_args!("rename \"{from}\" to \"{to}\""), e)),
        }
    }

    /// Removes a file; a missing file is not an error.
    pub fn unlink(&self, name: &str) -> Result<()> {
        let c = cstr(name);
        // SAFETY: valid dirfd and C string.
        if unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) } != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(Error::io(format_args!("remove \"{name}\""), e));
            }
        }
        Ok(())
    }

    /// Names of the entries in the directory.
    pub fn list(&self) -> Result<Vec<String>> {
        // SAFETY: dup of a valid fd; fdopendir takes ownership of the duplicate.
        let dup = unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(Error::io("read the queue directory", errno()));
        }
        // SAFETY: dup is a valid directory fd owned by the DIR stream from here on.
        let dirp = unsafe { libc::fdopendir(dup) };
        if dirp.is_null() {
            // SAFETY: dup is still ours when fdopendir fails.
            unsafe { libc::close(dup) };
            return Err(Error::io("read the queue directory", errno()));
        }
        // SAFETY: rewind so that a reused descriptor position does not hide entries.
        unsafe { libc::rewinddir(dirp) };
        let mut names = Vec::new();
        loop {
            // SAFETY: dirp is a valid open stream.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated within the dirent.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            if let Ok(s) = name.to_str() {
                if s != "." && s != ".." {
                    names.push(s.to_owned());
                }
            }
        }
        // SAFETY: closes the stream and its descriptor.
        unsafe { libc::closedir(dirp) };
        Ok(names)
    }
}

fn in_group(gid: u32) -> bool {
    // SAFETY: getegid cannot fail; getgroups with a correctly sized buffer.
    unsafe {
        if libc::getegid() == gid {
            return true;
        }
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return false;
        }
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let n = libc::getgroups(n, groups.as_mut_ptr());
        n > 0 && groups[..n as usize].contains(&gid)
    }
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: st is plain data filled by fstat.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(errno());
        }
        Ok(st)
    }
}

/// Allocates `len` bytes for real, so that later stores into a mapping cannot raise SIGBUS on a
/// full file system (I4).
pub fn allocate(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: valid fd; posix_fallocate returns the error number instead of setting errno.
    let r = unsafe { libc::posix_fallocate(fd, 0, len as libc::off_t) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Sets the file's length (growing it sparse; used only for the control file before `allocate`).
pub fn set_len(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: valid fd.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        return Err(errno());
    }
    Ok(())
}

/// An advisory whole-file lock (`flock`) held until dropped; used to serialise opening, creating
/// and wiping a queue. The kernel drops it if the process dies.
pub struct FileLock(OwnedFd);

impl FileLock {
    pub fn exclusive(fd: OwnedFd) -> io::Result<FileLock> {
        loop {
            // SAFETY: valid fd.
            if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(fd));
            }
            let e = errno();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: valid fd.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Byte-range open-file-description locks (`F_OFD_SETLK`): one byte per listener slot, held by the
/// slot's owner for its lifetime. The kernel releases it when the owner dies, whatever its PID
/// becomes later, so a free lock proves the owner is gone (PID reuse cannot fool it).
pub fn ofd_try_lock(fd: RawFd, byte: u64) -> io::Result<bool> {
    ofd(fd, libc::F_OFD_SETLK, libc::F_WRLCK as i16, byte)
}

pub fn ofd_unlock(fd: RawFd, byte: u64) {
    let _ = ofd(fd, libc::F_OFD_SETLK, libc::F_UNLCK as i16, byte);
}

/// Whether some other open file description holds the lock on `byte`.
pub fn ofd_is_held(fd: RawFd, byte: u64) -> io::Result<bool> {
    // SAFETY: fl is plain data, filled by fcntl.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // SAFETY: valid fd and flock struct.
    if unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut fl) } != 0 {
        return Err(errno());
    }
    Ok(fl.l_type != libc::F_UNLCK as i16)
}

fn ofd(fd: RawFd, cmd: libc::c_int, ty: i16, byte: u64) -> io::Result<bool> {
    // SAFETY: fl is plain data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = ty;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = byte as libc::off_t;
    fl.l_len = 1;
    // SAFETY: valid fd and flock struct.
    if unsafe { libc::fcntl(fd, cmd, &fl) } == 0 {
        return Ok(true);
    }
    let e = errno();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}
