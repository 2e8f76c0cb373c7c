//! Small helpers shared by every benchmark: a seeded PRNG for distinct random content,
//! timing and medians, resident-memory readings from `/proc/self/status`, file-system
//! sync and page-cache eviction (so one benchmark's dirty pages do not land on the next
//! one's fsync), and number formatting.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SplitMix64: fast, seedable, good enough to make every generated file distinct and
/// incompressible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

/// Run `f` once and return its result and wall time.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Median of a non-empty list of durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty(), "median of nothing");
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// A `kB` field of `/proc/self/status` (VmRSS, VmHWM), in bytes.
pub fn proc_status_kb(field: &str) -> u64 {
    let mut text = String::new();
    if File::open("/proc/self/status")
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return 0;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Current resident set size in bytes.
pub fn rss() -> u64 {
    proc_status_kb("VmRSS")
}

/// Peak resident set size (high-water mark) in bytes.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM")
}

/// Reset the peak-RSS high-water mark to the current RSS (Linux >= 4.0). Returns false
/// when the kernel refuses, in which case peak readings include earlier peaks.
pub fn reset_peak_rss() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// CPU time in clock ticks: (all CPUs busy, this process and its waited-for children).
pub fn cpu_ticks() -> (u64, u64) {
    let busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let f: Vec<u64> = t
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
            Some(f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?)
        })
        .unwrap_or(0);
    let me = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &t[t.rfind(')')? + 2..];
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // utime stime cutime cstime are fields 14..=17, i.e. 11..=14 after the name.
            Some(f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?)
        })
        .unwrap_or(0);
    (busy, me)
}

/// Share of the machine's CPUs used by other processes between two [`cpu_ticks`].
pub fn others_load(before: (u64, u64), after: (u64, u64), elapsed: Duration) -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let others = after.0.saturating_sub(before.0) as f64 - after.1.saturating_sub(before.1) as f64;
    (others.max(0.0) / hz / (elapsed.as_secs_f64() * cpus)).clamp(0.0, 1.0)
}

/// Flush every dirty page of the file system holding `path`, so the next timed fsync or
/// syncfs pays only for its own writes.
pub fn settle(path: &Path) {
    let _ = aos_store::durable::sync_filesystem(path);
}

/// Drop a file's pages from the page cache (after syncing it), to time a cold read.
pub fn evict(path: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = File::open(path) {
        let _ = f.sync_all();
        // SAFETY: posix_fadvise on a descriptor `f` owns for the call; it only advises.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// True when `program` runs (e.g. `b3sum --version`).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run a command to completion, failing loudly on a non-zero exit.
pub fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.stdout(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Remove a directory tree, ignoring a missing one.
pub fn remove_tree(path: &Path) {
    if path.exists() {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// `1234567.8` → `1,234,568`; values under 100 keep three significant digits.
pub fn group(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.abs() < 100.0 {
        let decimals = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        return format!("{x:.decimals$}");
    }
    let n = x.round() as i128;
    let digits = n.abs().to_string();
    let mut groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .map(|c| std::str::from_utf8(c).unwrap_or("?"))
        .collect();
    groups.reverse();
    let out = groups.join(",");
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Average cost of creating one empty file in a fresh directory under `dir` (the files
/// are left in place: deleting them would slow the next creations, see README).
pub fn create_probe(dir: &Path, n: usize) -> std::io::Result<Duration> {
    let probe = dir.join(format!(
        "create-probe-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&probe)?;
    let (r, d) = timed(|| -> std::io::Result<()> {
        for i in 0..n {
            File::create_new(probe.join(i.to_string()))?;
        }
        Ok(())
    });
    r?;
    Ok(d / n as u32)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Bytes per duration in MB/s (10^6, like dd and most disk tools).
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Items per second.
pub fn per_s(items: u64, d: Duration) -> f64 {
    items as f64 / d.as_secs_f64()
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Progress message on stderr (stdout stays the report).
pub fn say(msg: impl AsRef<str>) {
    eprintln!("  .. {}", msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(1234567.4), "1,234,567");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(12.34), "12.3");
        assert_eq!(group(1.234), "1.23");
        assert_eq!(group(0.01234), "0.0123");
        assert_eq!(group(0.0), "0");
    }

    #[test]
    fn medians() {
        let d = Duration::from_millis;
        assert_eq!(median(vec![d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(vec![d(4), d(1), d(2), d(3)]),
            Duration::from_micros(2500)
        );
    }
}
