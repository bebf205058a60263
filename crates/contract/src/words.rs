//! Counts in words: `1 entry`, `2 entries`, and the verb that agrees.
//! Every count the tools print goes through here, so none says `1 errors`.

use std::fmt::Display;

/// A count: any unsigned integer.
pub trait Count: Copy + Display {
    fn is_one(self) -> bool;
}

macro_rules! counts {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn is_one(self) -> bool {
                self == 1
            }
        }
    )*};
}
counts!(u8, u16, u32, u64, usize);

/// `n` and the noun that agrees with it: `count(1, "entry", "entries")`
/// is `1 entry`, `count(0, "entry", "entries")` is `0 entries`.
pub fn count<N: Count>(n: N, one: &str, many: &str) -> String {
    format!("{n} {}", agree(n, one, many))
}

/// The word that agrees with `n`: `agree(n, "was", "were")`.
pub fn agree<'a, N: Count>(n: N, one: &'a str, many: &'a str) -> &'a str {
    if n.is_one() { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1u64, "error", "errors"), "1 error");
        assert_eq!(count(0usize, "error", "errors"), "0 errors");
        assert_eq!(count(2u32, "entry", "entries"), "2 entries");
        assert_eq!(agree(1usize, "was", "were"), "was");
        assert_eq!(agree(11u64, "was", "were"), "were");
    }
}
