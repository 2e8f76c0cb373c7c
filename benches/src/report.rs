//! Results: one [`Row`] per measured case (aos, its baseline, the ratio and the target),
//! rendered as an aligned table per benchmark or as one JSON document (`--json`).
//!
//! The ratio is always "aos advantage": aos/baseline for throughputs, baseline/aos for
//! times and sizes, so a ratio above 1 means aos did better than the baseline.

use serde_json::{json, Value};

use crate::util::group;

/// Which direction of a number is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A goal and whether it was met.
#[derive(Debug, Clone)]
pub struct Target {
    pub text: String,
    pub pass: bool,
}

impl Target {
    pub fn new(text: impl Into<String>, pass: bool) -> Option<Target> {
        Some(Target {
            text: text.into(),
            pass,
        })
    }
}

/// One measured case.
#[derive(Debug, Clone)]
pub struct Row {
    pub bench: &'static str,
    pub case: String,
    pub unit: &'static str,
    pub better: Better,
    pub aos: f64,
    /// Baseline name and value, in the same unit.
    pub baseline: Option<(String, f64)>,
    pub target: Option<Target>,
}

impl Row {
    /// A throughput row (higher is better).
    pub fn rate(
        bench: &'static str,
        case: impl Into<String>,
        unit: &'static str,
        aos: f64,
        baseline: Option<(&str, f64)>,
    ) -> Row {
        Row {
            bench,
            case: case.into(),
            unit,
            better: Better::Higher,
            aos,
            baseline: baseline.map(|(n, v)| (n.to_string(), v)),
            target: None,
        }
    }

    /// A time or size row (lower is better).
    pub fn cost(
        bench: &'static str,
        case: impl Into<String>,
        unit: &'static str,
        aos: f64,
        baseline: Option<(&str, f64)>,
    ) -> Row {
        Row {
            better: Better::Lower,
            ..Row::rate(bench, case, unit, aos, baseline)
        }
    }

    pub fn target(mut self, target: Option<Target>) -> Row {
        self.target = target;
        self
    }

    /// aos advantage over the baseline (above 1: aos better).
    pub fn ratio(&self) -> Option<f64> {
        let (_, b) = self.baseline.as_ref()?;
        let r = match self.better {
            Better::Higher => self.aos / b,
            Better::Lower => b / self.aos,
        };
        r.is_finite().then_some(r)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "bench": self.bench,
            "case": self.case,
            "unit": self.unit,
            "better": match self.better { Better::Higher => "higher", Better::Lower => "lower" },
            "aos": self.aos,
            "baseline": self.baseline.as_ref().map(|(n, _)| n),
            "baseline_value": self.baseline.as_ref().map(|(_, v)| v),
            "ratio": self.ratio(),
            "target": self.target.as_ref().map(|t| &t.text),
            "pass": self.target.as_ref().map(|t| t.pass),
        })
    }
}

/// What one benchmark produced: rows plus free-text notes (where the time goes).
#[derive(Debug, Default)]
pub struct Section {
    pub name: &'static str,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Wall time of the whole benchmark, fixtures included.
    pub seconds: f64,
    /// Share of the CPUs other processes used meanwhile (0..1): a noisy machine.
    pub others_load: f64,
}

impl Section {
    pub fn new(name: &'static str) -> Section {
        Section {
            name,
            ..Section::default()
        }
    }

    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn to_json(&self) -> Value {
        json!({
            "bench": self.name,
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "notes": self.notes,
            "seconds": self.seconds,
            "others_cpu_share": self.others_load,
        })
    }

    /// The aligned text table.
    pub fn render(&self) -> String {
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let value = |v: f64| format!("{} {}", group(v), r.unit);
                [
                    format!("{} {}", r.bench, r.case),
                    format!("aos {}", value(r.aos)),
                    r.baseline
                        .as_ref()
                        .map_or(String::new(), |(n, v)| format!("{n} {}", value(*v))),
                    r.ratio()
                        .map_or(String::new(), |x| format!("ratio {x:.2}x")),
                    r.target
                        .as_ref()
                        .map_or(String::new(), |t| format!("target {}", t.text)),
                    r.target.as_ref().map_or(String::new(), |t| {
                        if t.pass {
                            "PASS".into()
                        } else {
                            "FAIL".into()
                        }
                    }),
                ]
            })
            .collect();
        let mut widths = [0usize; 6];
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = format!("== {} ==\n", self.name);
        for row in &cells {
            let mut line = String::new();
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                if w == 0 {
                    continue;
                }
                let pad = w - c.chars().count();
                // Numbers read best right-aligned; names left-aligned.
                if i == 1 || i == 2 {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str("   note: ");
            out.push_str(n);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_aos_advantage() {
        let r = Row::rate("x", "a", "obj/s", 100.0, Some(("git", 10.0)));
        assert_eq!(r.ratio(), Some(10.0));
        let c = Row::cost("x", "b", "ms", 10.0, Some(("cp", 100.0)));
        assert_eq!(c.ratio(), Some(10.0));
        let t = c.target(Target::new("<1000 ms", true));
        assert!(t.render_check());
    }

    impl Row {
        fn render_check(&self) -> bool {
            let mut s = Section::new("t");
            s.row(self.clone());
            s.render().contains("PASS")
        }
    }
}
