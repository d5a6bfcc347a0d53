//! A queue member for the damage tests (`tests/damage.rs`): it keeps using a queue until an
//! operation fails, and says how it ended, so that a test can tell an error from a crash or a hang.
//!
//! ```text
//! member listen DIR CHANNEL    LISTENs, prints "READY", then waits in slices of 50 ms and prints
//!                              "GOT <payload>" per notification.
//! member notify DIR CHANNEL    Commits a notification every 5 ms, printing "SENT <n>" after each
//!                              ("READY" after the first).
//! ```
//! The first failed operation prints "ERROR <sqlstate> <message>" and exits 3; after 120 s
//! without one it exits 4.
//!
//! ```text
//! member sigbus DIR [own]      Opens the queue, then touches a page of a mapped scratch file
//!                              truncated under it (not a queue file): hark's SIGBUS handler must
//!                              leave that fault to the one installed before it. With "own", the
//!                              program installs its own handler first, which repairs the page
//!                              and prints "CHAINED"; without, the process must die by SIGBUS.
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sigbus") && args.len() >= 2 {
        foreign_sigbus(&args[1], args.get(2).map(String::as_str) == Some("own"));
    }
    if args.len() != 3 {
        eprintln!("usage: member listen|notify DIR CHANNEL");
        std::process::exit(64);
    }
    let (mode, dir, channel) = (args[0].as_str(), &args[1], &args[2]);
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let started = Instant::now();
    let r = (|| -> hark::Result<()> {
        let mut c = hark::Connection::open(dir)?;
        c.set_notice_handler(Some(Box::new(|_| {})));
        match mode {
            "listen" => {
                c.listen(channel)?;
                say("READY".into());
                while started.elapsed() < Duration::from_secs(120) {
                    c.wait(Some(Duration::from_millis(50)))?;
                    while let Some(n) = c.notifies()? {
                        say(format!("GOT {}", n.payload));
                    }
                }
            }
            "notify" => {
                let mut sent = 0u64;
                while started.elapsed() < Duration::from_secs(120) {
                    c.notify(channel, &format!("n{sent}"))?;
                    sent += 1;
                    if sent == 1 {
                        say("READY".into());
                    }
                    say(format!("SENT {sent}"));
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            _ => {
                eprintln!("member: unknown mode {mode}");
                std::process::exit(64);
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => std::process::exit(4),
        Err(e) => {
            say(format!("ERROR {} {}", e.sqlstate(), e.message()));
            std::process::exit(3);
        }
    }
}

static REPAIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The program's own SIGBUS handler: maps a zero page over the faulting one and notes it.
extern "C" fn own_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: si_addr of a SIGBUS is the faulting address; the page replaced lies in the scratch
    // mapping made below, which nothing else uses.
    unsafe {
        let page = (*info).si_addr() as usize & !4095;
        libc::mmap(
            page as *mut _,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
    }
    REPAIRED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn foreign_sigbus(dir: &str, own: bool) -> ! {
    if own {
        // SAFETY: a zeroed sigaction filled with a SA_SIGINFO handler of the right signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = own_handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    }
    let c = hark::Connection::open(dir).expect("open the queue"); // installs hark's handler
    let path = std::path::Path::new(dir).join("scratch");
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.set_len(8192).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of 8192 bytes of our own file.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, f.as_raw_fd(), 0)
    };
    assert_ne!(p, libc::MAP_FAILED);
    f.set_len(0).unwrap();
    println!("TOUCHING");
    let _ = std::io::stdout().flush();
    // SAFETY: inside the mapping; the file is truncated, so this faults (SIGBUS) on purpose.
    let v = unsafe { std::ptr::read_volatile(p as *const u8) };
    println!("{} {v}", if REPAIRED.load(std::sync::atomic::Ordering::SeqCst) { "CHAINED" } else { "NOT CHAINED" });
    drop(c);
    std::process::exit(0);
}
