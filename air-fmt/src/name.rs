//! Qualified names `namespace/name@version` (version a positive integer), and the
//! smaller identifier classes AIR uses (step ids, variable and grant names, effect kinds).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A qualified def name such as `demo/Counter@1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Parse and check a name; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Name, String> {
        let (ns, rest) = s
            .split_once('/')
            .ok_or("a name is namespace/name@version: the `/` is missing")?;
        let (local, version) = rest
            .rsplit_once('@')
            .ok_or("a name is namespace/name@version: the `@version` is missing")?;
        let ns_ok = ns.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && ns
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ns_ok {
            return Err(format!(
                "namespace {ns:?} must start with a lowercase letter and use a-z 0-9 . _ -"
            ));
        }
        let local_ok = local
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !local_ok {
            return Err(format!(
                "name {local:?} must start with a letter and use A-Z a-z 0-9 . _ -"
            ));
        }
        let v_ok = !version.is_empty()
            && !version.starts_with('0')
            && version.chars().all(|c| c.is_ascii_digit());
        if !v_ok {
            return Err(format!(
                "version {version:?} must be a positive integer without leading zeros"
            ));
        }
        Ok(Name(s.to_string()))
    }

    /// A value ordering before every valid name (for range scans).
    pub(crate) fn lowest() -> Name {
        Name(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map_or("", |(n, _)| n)
    }

    /// True for the built-in `sys/` namespace.
    pub fn is_sys(&self) -> bool {
        self.namespace() == "sys"
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Step ids, variable names, grant names and cap slot names: `[A-Za-z_][A-Za-z0-9_.-]{0,63}`.
pub fn check_ident(s: &str) -> Result<(), String> {
    let ok = s.len() <= 64
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(
            "must start with a letter or `_`, use A-Z a-z 0-9 _ . -, and be at most 64 characters"
                .into(),
        )
    }
}

/// Effect kinds and capability types: lowercase dotted identifiers such as `http.request`.
pub fn check_kind(s: &str) -> Result<(), String> {
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("must start with a lowercase letter and use a-z 0-9 _ . -".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "demo/Counter@1",
            "com.acme/Point@12",
            "sys/http.request@1",
            "a-b/x_y.z@3",
        ] {
            Name::parse(good).unwrap();
        }
        for bad in [
            "Counter@1",
            "demo/Counter",
            "demo/Counter@0",
            "demo/Counter@01",
            "Demo/X@1",
            "demo/1X@1",
            "demo/X@1x",
            "",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        assert!(Name::parse("sys/TimerFired@1").unwrap().is_sys());
        check_ident("http_req").unwrap();
        assert!(check_ident("1x").is_err());
        check_kind("http.request").unwrap();
        assert!(check_kind("Http").is_err());
    }
}
