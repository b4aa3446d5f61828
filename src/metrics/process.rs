//! The standard `process_*` metrics, read from `/proc/self` (Linux; absent elsewhere).

use super::exposition::Page;

pub fn write(page: &mut Page, start_time_seconds: f64) {
    page.family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    page.sample("process_start_time_seconds", &[], start_time_seconds);
    let ticks = 100.0; // USER_HZ on every Linux platform we run on
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r)
    {
        // Fields after the command name; utime and stime are fields 14 and 15 of the line.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            page.family(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
            );
            page.sample("process_cpu_seconds_total", &[], (utime + stime) / ticks);
        }
        if let (Some(vsize), Some(rss)) = (field(23), field(24)) {
            page.family(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
            );
            page.sample("process_virtual_memory_bytes", &[], vsize);
            page.family(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            page.sample("process_resident_memory_bytes", &[], rss * 4096.0);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        page.family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        page.sample("process_open_fds", &[], fds.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(max) = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
    {
        page.family(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        page.sample("process_max_fds", &[], max);
    }
}
