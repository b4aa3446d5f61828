//! The Prometheus text exposition format (version 0.0.4): HELP and TYPE once per family, then
//! its samples. Label values are escaped; families are written whole, so `promtool` accepts it.

use std::fmt::Write;

use super::HistogramSnapshot;

/// Builds one `/metrics` page.
#[derive(Debug, Default)]
pub struct Page {
    out: String,
}

pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl Page {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// The `_bucket`, `_sum` and `_count` series of one histogram.
    pub fn histogram(&mut self, name: &str, labels: Labels<'_>, h: &HistogramSnapshot) {
        for (bound, count) in &h.buckets {
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(*bound));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", number(h.sum_seconds));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: Labels<'_>, le: Option<f64>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "le=\"{}\"", number(le));
    }
    out.push('}');
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_histograms_end_in_inf() {
        let mut page = Page::default();
        page.family("x_total", "counter", "Things.");
        page.sample("x_total", &[("a", "q\"u\\o\nte")], 3.0);
        let h = super::super::Histogram::new(&[0.5]);
        h.observe(0.25);
        page.family("y_seconds", "histogram", "Time.");
        page.histogram("y_seconds", &[("k", "v")], &h.snapshot());
        let text = page.finish();
        assert!(
            text.contains("x_total{a=\"q\\\"u\\\\o\\nte\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("y_seconds_bucket{k=\"v\",le=\"0.5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("y_seconds_bucket{k=\"v\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("y_seconds_sum{k=\"v\"} 0.25\n"), "{text}");
    }
}
