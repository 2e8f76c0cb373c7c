//! Strict readers of canonical values for the gates: a field of a record, text, sets
//! of text, nats and exact decimals, and the quoting used in reasons. Anything of an
//! unexpected shape is an error, never a silent "unconstrained".

use std::cmp::Ordering;

use serde_json::Value;

/// The longest a quoted value gets in a reason, in characters.
const SHOW_MAX: usize = 160;

/// A value quoted as a JSON string (escapes included), cut to a readable length.
pub fn q(s: &str) -> String {
    if s.chars().count() > SHOW_MAX {
        let cut: String = s.chars().take(SHOW_MAX - 3).collect();
        format!("{}...", Value::String(cut))
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// A JSON value for a reason, cut to a readable length.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > SHOW_MAX {
        let cut: String = s.chars().take(SHOW_MAX - 3).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// A list of texts for a reason: `["a", "b"]`.
pub fn list(items: &[&str]) -> String {
    let shown: Vec<String> = items.iter().take(20).map(|s| q(s)).collect();
    if items.len() > 20 {
        format!("[{}, … {} more]", shown.join(", "), items.len() - 20)
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// A field of a record that is present and not `null`.
pub fn field<'a>(rec: &'a Value, name: &str) -> Option<&'a Value> {
    rec.get(name).filter(|v| !v.is_null())
}

/// An optional text field.
pub fn opt_text<'a>(rec: &'a Value, name: &str) -> Result<Option<&'a str>, String> {
    match field(rec, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{name}` is not text (found {})", show(other))),
    }
}

/// An optional set (or list) of text.
pub fn opt_text_set<'a>(rec: &'a Value, name: &str) -> Result<Option<Vec<&'a str>>, String> {
    match field(rec, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str())
            .collect::<Option<Vec<&str>>>()
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "`{name}` is not a set of text (found {})",
                    show(&Value::Array(items.clone()))
                )
            }),
        Some(other) => Err(format!(
            "`{name}` is not a set of text (found {})",
            show(other)
        )),
    }
}

/// A canonical nat: a JSON number, or a decimal string beyond 2^53.
pub fn nat(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// An optional nat field.
pub fn opt_nat(rec: &Value, name: &str) -> Result<Option<u64>, String> {
    match field(rec, name) {
        None => Ok(None),
        Some(v) => nat(v)
            .map(Some)
            .ok_or_else(|| format!("`{name}` is not a nat (found {})", show(v))),
    }
}

/// An optional set (or list) of nats.
pub fn opt_nat_set(rec: &Value, name: &str) -> Result<Option<Vec<u64>>, String> {
    match field(rec, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(nat)
            .collect::<Option<Vec<u64>>>()
            .map(Some)
            .ok_or_else(|| format!("`{name}` is not a set of nats")),
        Some(other) => Err(format!(
            "`{name}` is not a set of nats (found {})",
            show(other)
        )),
    }
}

/// The text of a dec128 (canonical: a decimal string; a JSON number is read by its
/// shortest decimal text).
pub fn decimal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Decimal::parse(s).map(|_| s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An exact decimal: sign, significant digits and the power of ten of the first digit.
/// `0.d1d2… × 10^exp`; zero has no digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// Exponents beyond this are saturated (by the lexer): far outside dec128, and still
/// ordered right.
const EXP_LIMIT: i64 = 1_000_000_000_000;

impl Decimal {
    /// Parse `[+-]digits[.digits][(e|E)[+-]digits]` (at least one digit in the
    /// mantissa). Nothing else is a decimal.
    pub fn parse(s: &str) -> Option<Decimal> {
        let air_fmt::value::DecimalLex {
            neg,
            int,
            frac,
            exp: e,
        } = air_fmt::value::lex_decimal(s)?;
        // All digits, the decimal point after `int.len()` of them.
        let all: Vec<u8> = int.iter().chain(frac).map(|d| d - b'0').collect();
        let lead = all.iter().take_while(|&&d| d == 0).count();
        let mut digits = all[lead..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal {
                neg: false,
                digits,
                exp: 0,
            });
        }
        // The first significant digit sits at position `lead` of `all`; the value is
        // 0.d1d2… × 10^(int.len() - lead + e).
        let exp = (int.len() as i64 - lead as i64 + e).clamp(-2 * EXP_LIMIT, 2 * EXP_LIMIT);
        Some(Decimal { neg, digits, exp })
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.neg) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let (sa, sb) = (self.sign(), other.sign());
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        // Same sign, both non-zero: compare magnitudes.
        let mag = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if sa < 0 {
            mag.reverse()
        } else {
            mag
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        match Decimal::parse(s) {
            Some(x) => x,
            None => panic!("{s:?} should parse"),
        }
    }

    #[test]
    fn decimals_compare_exactly() {
        let ordered = [
            "-1e3",
            "-10.5",
            "-10.49",
            "-0.3",
            "-0.00001",
            "0",
            "1e-7",
            "0.1",
            "0.2",
            "0.3",
            "0.30000000000000000000000000000001",
            "0.7",
            "1",
            "1.5",
            "2",
            "10",
            "1e34",
            "1e6144",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(d(a).cmp(&d(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        for (a, b) in [
            ("0.70", "0.7"),
            ("-0", "0"),
            ("000.000", "0"),
            ("1e2", "100"),
            ("100e-2", "1"),
            ("+1.0", "1"),
            ("0.5E1", "5"),
            ("12.50", "12.5"),
        ] {
            assert_eq!(d(a).cmp(&d(b)), Ordering::Equal, "{a} vs {b}");
        }
        for bad in [
            "", ".", "-", "1e", "1e+", "abc", "1.2.3", "0x10", " 1", "1 ", "NaN", "inf",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
        // Huge exponents saturate but keep their order.
        assert!(d("1e999999999999999999999") > d("1e6144"));
        assert!(d("1e-999999999999999999999") < d("1e-6176"));
        assert!(d("1e-999999999999999999999") > d("0"));
    }

    #[test]
    fn readers_are_strict() {
        let v = serde_json::json!({"a": ["x", "y"], "b": null, "c": [1, "2"], "n": "18446744073709551615", "t": 5});
        assert_eq!(opt_text_set(&v, "a"), Ok(Some(vec!["x", "y"])));
        assert_eq!(opt_text_set(&v, "b"), Ok(None));
        assert_eq!(opt_text_set(&v, "missing"), Ok(None));
        assert!(opt_text_set(&v, "c").is_err());
        assert!(opt_text(&v, "t").is_err());
        assert_eq!(opt_nat(&v, "n"), Ok(Some(u64::MAX)));
        assert_eq!(opt_nat(&v, "t"), Ok(Some(5)));
        assert!(opt_nat(&v, "a").is_err());
        assert_eq!(opt_nat_set(&v, "c"), Ok(Some(vec![1, 2])));
        assert_eq!(q("a\"b"), "\"a\\\"b\"");
        assert!(q(&"x".repeat(1000)).len() < 200);
    }
}
