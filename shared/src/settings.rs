//! Reading a function's settings from its environment, one way for every Lambda: a missing or
//! unreadable variable is an error that names the variable and the value it had. Each function
//! has its own `Config` built through [`Settings`]; tests pass a map instead of the process
//! environment.

use std::collections::HashMap;
use std::str::FromStr;

/// A missing or unreadable environment variable, named with the value it had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set to something the function cannot use.
    #[error("environment variable {name}={value:?} is invalid: {why}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it was set to.
        value: String,
        /// Why that value is refused.
        why: String,
    },
}

/// Where settings come from: the process environment in `main`, a map in tests.
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

/// A fixed set of variables (for tests and for tools that build a function's environment).
pub fn from_pairs(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::new(move |k: &str| map.get(k).cloned())
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Settings read through `lookup`.
    pub fn new(lookup: F) -> Self {
        Settings { lookup }
    }

    /// The trimmed value of `name`, `None` when unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A variable that must be set and not blank.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// A variable parsed as `T`, `default` when unset or blank.
    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid { name, value: v, why: e.to_string() }),
        }
    }

    /// The value `value` of variable `name` read with `read`; its error names the variable.
    pub fn checked<T, E: std::fmt::Display>(
        &self,
        name: &'static str,
        value: &str,
        read: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        read(value).map_err(|e| ConfigError::Invalid { name, value: value.to_owned(), why: e.to_string() })
    }

    /// A variable parsed as `T` that must lie in `range` (inclusive), `default` when unset.
    pub fn in_range<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let v = self.parsed(name, default)?;
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError::Invalid {
                name,
                value: self.optional(name).unwrap_or_else(|| v.to_string()),
                why: format!("must be from {} to {}", range.start(), range.end()),
            })
        }
    }

    /// `true` or `false` (exactly, as the template's AllowedValues write them), `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => {
                Err(ConfigError::Invalid { name, value: other.to_owned(), why: "must be true or false".into() })
            }
        }
    }
}

/// For each function's tests of its `Config`: `read` (a `Config` built from pairs) must name
/// every variable of `base` when it is missing, and refuse each `(variable, value)` of `bad`
/// (set on top of `base`) with an error naming both. Panics with the offending case.
pub fn assert_errors_name_the_variable<T, E: std::fmt::Display>(
    base: &[(&str, &str)],
    bad: &[(&str, &str)],
    read: impl Fn(&[(&str, &str)]) -> Result<T, E>,
) {
    for (name, _) in base {
        let without: Vec<_> = base.iter().copied().filter(|(k, _)| k != name).collect();
        match read(&without) {
            Ok(_) => panic!("{name} is required but its absence was accepted"),
            Err(e) => assert!(e.to_string().contains(name), "missing {name}: {e}"),
        }
    }
    for (name, value) in bad {
        let mut with = base.to_vec();
        with.push((name, value));
        match read(&with) {
            Ok(_) => panic!("{name}={value:?} was accepted"),
            Err(e) => assert!(e.to_string().contains(name) && e.to_string().contains(value), "{name}={value}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_optional_and_parsed_name_the_variable_and_value() {
        let s = from_pairs(&[("A", " x "), ("BLANK", "  "), ("N", "12"), ("BAD", "forever"), ("F", "yes")]);
        assert_eq!(s.required("A").unwrap(), "x");
        assert_eq!(s.required("BLANK"), Err(ConfigError::Missing("BLANK")));
        assert_eq!(s.optional("UNSET"), None);
        assert_eq!(s.parsed("N", 0u32).unwrap(), 12);
        assert_eq!(s.parsed("UNSET", 7u32).unwrap(), 7);
        let e = s.parsed("BAD", 0u32).unwrap_err().to_string();
        assert!(e.contains("BAD") && e.contains("forever"), "{e}");
        let e = s.flag("F", false).unwrap_err().to_string();
        assert!(e.contains("F=\"yes\"") && e.contains("true or false"), "{e}");
        assert!(!s.flag("UNSET", false).unwrap());
    }

    #[test]
    fn ranges_are_enforced_with_the_bounds_in_the_message() {
        let s = from_pairs(&[("DAYS", "0"), ("OK", "30")]);
        let e = s.in_range("DAYS", 400u32, 1..=3650).unwrap_err().to_string();
        assert!(e.contains("DAYS=\"0\"") && e.contains("from 1 to 3650"), "{e}");
        assert_eq!(s.in_range("OK", 400u32, 1..=3650).unwrap(), 30);
        assert_eq!(s.in_range("UNSET", 400u32, 1..=3650).unwrap(), 400);
    }
}
