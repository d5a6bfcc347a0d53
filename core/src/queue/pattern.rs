//! Channel patterns for subscriptions (Redis' PSUBSCRIBE globs): `*` matches any run of bytes,
//! `?` any one byte, `\` makes the next byte literal. A channel name with none of `*?\` is an
//! exact channel. Plain LISTEN never takes patterns.
//!
//! Waking pattern subscribers costs a notifier one more bucket per channel, not a walk over
//! patterns: a pattern whose literal prefix has at least `PREFIX_LEN` bytes is filed under the
//! bucket of those bytes' hash, and a commit wakes, besides the exact buckets of its channels,
//! the prefix bucket of each channel's first `PREFIX_LEN` bytes. Patterns with a shorter literal
//! prefix (`*`, `a*`) are woken by every commit.

use crate::layout::{bucket_of, PREFIX_LEN};

/// A channel name or a glob, as given to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Spec {
    Exact(Vec<u8>),
    Glob(Vec<u8>),
}

impl Spec {
    pub fn parse(s: &str) -> Spec {
        let b = s.as_bytes();
        if b.iter().any(|&c| matches!(c, b'*' | b'?' | b'\\')) {
            Spec::Glob(b.to_vec())
        } else {
            Spec::Exact(b.to_vec())
        }
    }

    pub fn matches(&self, channel: &[u8]) -> bool {
        match self {
            Spec::Exact(e) => e == channel,
            Spec::Glob(g) => glob(g, channel),
        }
    }
}

/// The prefix bucket a glob is filed under, or `None` when its literal prefix is shorter than
/// `PREFIX_LEN` (then every commit wakes it).
pub(crate) fn glob_prefix_bucket(g: &[u8]) -> Option<usize> {
    let mut lit = Vec::with_capacity(PREFIX_LEN);
    let mut i = 0;
    while i < g.len() && lit.len() < PREFIX_LEN {
        match g[i] {
            b'*' | b'?' => return None,
            b'\\' if i + 1 < g.len() => {
                lit.push(g[i + 1]);
                i += 2;
            }
            b'\\' => return None,
            c => {
                lit.push(c);
                i += 1;
            }
        }
    }
    (lit.len() == PREFIX_LEN).then(|| bucket_of(&lit))
}

/// The prefix bucket a notification on `channel` wakes, if the channel is long enough for one.
pub(crate) fn channel_prefix_bucket(channel: &[u8]) -> Option<usize> {
    (channel.len() >= PREFIX_LEN).then(|| bucket_of(&channel[..PREFIX_LEN]))
}

/// Whether `s` matches glob `p` (iterative, with one backtracking point per `*`: linear in
/// practice, quadratic at worst on 63-byte names).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c != b'\\' && c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_redis_does() {
        for (p, s, m) in [
            ("orders.*", "orders.created", true),
            ("orders.*", "orders.", true),
            ("orders.*", "orders", false),
            ("orders.*", "xorders.a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.paid", "orders.paid", true),
            ("*.paid", "orders.paid.not", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("lit\\*", "lit*", true),
            ("lit\\*", "litx", false),
            ("q\\?", "q?", true),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), m, "{p} ~ {s}");
        }
    }

    #[test]
    fn prefix_buckets_agree_between_patterns_and_channels() {
        let g = glob_prefix_bucket(b"orders.*").unwrap();
        assert_eq!(Some(g), channel_prefix_bucket(b"orders.created"));
        assert_eq!(glob_prefix_bucket(b"ord*"), None);
        assert_eq!(glob_prefix_bucket(b"*x"), None);
        assert_eq!(glob_prefix_bucket(b"o\\*rd*").unwrap(), channel_prefix_bucket(b"o*rders").unwrap());
        assert_eq!(channel_prefix_bucket(b"abc"), None);
    }
}
