//! The machine's own floor: how fast one process can wake another blocked in `read()` on a pipe,
//! and how fast memory copies. hark's latency goal is stated against the first.

use crate::measure::{now_ns, percentiles, Pace};

/// Wake-up latency through a pipe between two processes: the parent writes its send time, the
/// child blocked in `read()` takes the difference; the parent spins or sleeps between writes
/// (`pace`). Returns p50, p90, p99, max in µs.
pub fn pipe_wakeup(samples: usize, pace: Pace) -> std::io::Result<[f64; 4]> {
    let mut to_child = [0; 2];
    let mut back = [0; 2];
    // SAFETY: pipe fills two descriptors; fork below duplicates them into the child, which only
    // reads, writes and _exits.
    unsafe {
        if libc::pipe(to_child.as_mut_ptr()) != 0 || libc::pipe(back.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            let mut lat = Vec::with_capacity(samples);
            let mut buf = [0u8; 8];
            for _ in 0..samples {
                if libc::read(to_child[0], buf.as_mut_ptr().cast(), 8) != 8 {
                    libc::_exit(1);
                }
                lat.push(now_ns().saturating_sub(u64::from_ne_bytes(buf)) as f64 / 1000.0);
            }
            let p = percentiles(lat);
            for v in p {
                libc::write(back[1], v.to_ne_bytes().as_ptr().cast(), 8);
            }
            libc::_exit(0);
        }
        libc::close(to_child[0]);
        libc::close(back[1]);
        for _ in 0..samples {
            let t = now_ns();
            libc::write(to_child[1], t.to_ne_bytes().as_ptr().cast(), 8);
            pace.until(t + 150_000);
        }
        let mut out = [0f64; 4];
        for v in &mut out {
            let mut b = [0u8; 8];
            if libc::read(back[0], b.as_mut_ptr().cast(), 8) != 8 {
                return Err(std::io::Error::other("pipe floor child failed"));
            }
            *v = f64::from_ne_bytes(b);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        libc::close(to_child[1]);
        libc::close(back[0]);
        Ok(out)
    }
}

/// memcpy bandwidth in GB/s over a buffer larger than the caches.
pub fn memcpy_gbps(bytes: usize, rounds: usize) -> f64 {
    let src = vec![7u8; bytes];
    let mut dst = vec![0u8; bytes];
    dst.copy_from_slice(&src); // fault the pages in first
    let t = now_ns();
    for _ in 0..rounds {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    (bytes * rounds) as f64 / (now_ns() - t) as f64
}
