//! What a PostgreSQL client asks of a result's bytes, as plain values: which columns come in
//! binary (a `Bind` message's result format codes).
//!
//! Invariant: [`PgColumns`] is `Copy` and hashable, so it travels inside [`super::Format`] and
//! keys the result cache like any other format.

/// Which result columns a PostgreSQL client reads in binary (format code 1); the others are
/// text (code 0). Per-column codes are kept for the first [`PgColumns::MAX_MIXED`] columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PgColumns {
    /// Every column in text: the simple protocol, or a `Bind` with no codes or one `0`.
    #[default]
    Text,
    /// Every column in binary: a `Bind` with one code `1`.
    Binary,
    /// Bit `i` set: column `i` in binary.
    Mixed(u128),
}

impl PgColumns {
    /// The most columns a `Bind` may give codes one by one.
    pub const MAX_MIXED: usize = 128;

    /// The columns a `Bind`'s result format codes ask for; `None` when a code is neither 0 nor
    /// 1, or per-column codes ask binary past [`Self::MAX_MIXED`].
    pub fn from_codes(codes: &[i16]) -> Option<Self> {
        match codes {
            [] | [0] => Some(Self::Text),
            [1] => Some(Self::Binary),
            many => {
                let mut mask = 0u128;
                for (i, &code) in many.iter().enumerate() {
                    match code {
                        0 => {}
                        1 if i < Self::MAX_MIXED => mask |= 1 << i,
                        _ => return None,
                    }
                }
                Some(Self::Mixed(mask))
            }
        }
    }

    /// Whether column `i` is read in binary.
    pub fn is_binary(self, i: usize) -> bool {
        match self {
            Self::Text => false,
            Self::Binary => true,
            Self::Mixed(mask) => i < Self::MAX_MIXED && mask & (1 << i) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_codes_become_columns() {
        assert_eq!(PgColumns::from_codes(&[]), Some(PgColumns::Text));
        assert_eq!(PgColumns::from_codes(&[1]), Some(PgColumns::Binary));
        let mixed = PgColumns::from_codes(&[0, 1, 0, 1]).unwrap();
        assert_eq!(
            (0..5).map(|i| mixed.is_binary(i)).collect::<Vec<_>>(),
            [false, true, false, true, false]
        );
        assert_eq!(PgColumns::from_codes(&[2]), None);
        assert_eq!(PgColumns::from_codes(&[0, 7]), None);
    }
}
