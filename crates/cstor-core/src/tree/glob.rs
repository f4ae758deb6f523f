//! Shell-style patterns over paths, for picking a scanner's dozen files out of a tree in one pass:
//! `*` and `?` within one component, `[abc]` / `[!a-z]` classes, `**` for any number of
//! components. A leading `/` is ignored: paths are relative to the image root.

use crate::error::{Error, Result};

/// A parsed pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    /// `**`: any number of whole components.
    AnyComponents,
    /// One component's pattern.
    Component(Vec<Token>),
}

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob> {
        let parts = pattern
            .trim_start_matches('/')
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|component| match component {
                "**" => Ok(Part::AnyComponents),
                _ => tokens(component, pattern).map(Part::Component),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Glob { parts })
    }

    /// Whether `path` (no leading `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        match_parts(&self.parts, &components)
    }
}

fn tokens(component: &str, pattern: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = component.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            '\\' => Token::Literal(chars.next().unwrap_or('\\')),
            '[' => {
                let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(c) = chars.next() else {
                        return Err(Error::InvalidArgument(format!(
                            "glob {pattern:?}: a '[' class is not closed"
                        )));
                    };
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let end = match chars.peek() {
                        Some('-') => {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    ranges.push((c, c));
                                    ranges.push(('-', '-'));
                                    break;
                                }
                                Some(end) => end,
                                None => c,
                            }
                        }
                        _ => c,
                    };
                    ranges.push((c, end));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Literal(c),
        });
    }
    Ok(out)
}

fn match_parts(parts: &[Part], components: &[&str]) -> bool {
    match parts.split_first() {
        None => components.is_empty(),
        Some((Part::AnyComponents, rest)) => {
            (0..=components.len()).any(|skip| match_parts(rest, &components[skip..]))
        }
        Some((Part::Component(tokens), rest)) => match components.split_first() {
            Some((first, others)) => {
                let chars: Vec<char> = first.chars().collect();
                match_tokens(tokens, &chars) && match_parts(rest, others)
            }
            None => false,
        },
    }
}

fn match_tokens(tokens: &[Token], chars: &[char]) -> bool {
    match tokens.split_first() {
        None => chars.is_empty(),
        Some((Token::AnyRun, rest)) => (0..=chars.len()).any(|n| match_tokens(rest, &chars[n..])),
        Some((token, rest)) => match chars.split_first() {
            Some((c, others)) => {
                let hit = match token {
                    Token::Literal(l) => l == c,
                    Token::AnyChar => true,
                    Token::Class { negated, ranges } => {
                        ranges.iter().any(|(a, b)| a <= c && c <= b) != *negated
                    }
                    Token::AnyRun => false,
                };
                hit && match_tokens(rest, others)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn matches_as_a_shell_does() {
        let cases = [
            ("etc/os-release", "etc/os-release", true),
            ("/etc/os-release", "etc/os-release", true),
            ("etc/*", "etc/os-release", true),
            ("etc/*", "etc/ssl/certs", false),
            ("**/*.so", "usr/lib/libc.so", true),
            ("**/*.so", "libc.so", true),
            ("usr/**", "usr/lib/x", true),
            ("lib/apk/db/installed", "lib/apk/db/installed", true),
            ("var/lib/[dr]pm/*", "var/lib/dpm/status", true),
            ("var/lib/[!d]pm/*", "var/lib/dpm/status", false),
            ("?tc", "etc", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                Glob::new(pattern).unwrap().matches(path),
                expected,
                "{pattern} {path}"
            );
        }
        assert!(Glob::new("[abc").is_err());
    }
}
