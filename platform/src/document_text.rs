//! The lexical limits on a GraphQL document, checked by all three servers before anything
//! parses it: tokens, directives and aliases, counted in one pass of a small lexer that stops
//! at the first count over its limit. A document of 100,000 tokens or 5,000 unknown
//! directives costs a scan of the first few thousand bytes and gets one error, never a
//! syntax tree and never one error per directive.
//!
//! Aliases are a name followed by `:` inside a selection set, outside any argument list:
//! what is counted is what was written, and every alias must be written out. Whether the text
//! is valid GraphQL is the parser's business: the lexer only has to count valid documents
//! right and finish on anything else.

/// The limits on one document's text. `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Lexical tokens (names, punctuators, numbers, strings; not commas, spaces or
    /// comments): `TOKEN_LIMIT_EXCEEDED`.
    pub max_tokens: usize,
    /// Directives (`@name`) in the whole document: `DIRECTIVE_LIMIT_EXCEEDED`.
    pub max_directives: usize,
    /// Aliases written in the document: `MAX_ALIASES_EXCEEDED`.
    pub max_aliases: usize,
}

/// A document refused for its text: the error code, a message for the client, and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TextRefusal {
    pub code: &'static str,
    pub message: String,
    pub limit: u64,
}

impl TextRefusal {
    fn new(code: &'static str, message: String, limit: usize) -> Self {
        Self {
            code,
            message,
            limit: limit as u64,
        }
    }
}

fn over(limit: usize, count: usize) -> bool {
    limit > 0 && count > limit
}

/// What one pass of the lexer counted, up to the first limit exceeded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TextCounts {
    pub tokens: usize,
    pub directives: usize,
    pub aliases: usize,
}

pub fn check(query: &str, limits: &TextLimits) -> Result<TextCounts, TextRefusal> {
    let bytes = query.as_bytes();
    let mut counts = TextCounts::default();
    let mut i = 0;
    // Inside `(…)`: arguments, variable definitions and their values, where `name:` is not
    // an alias. Inside `{…}` and outside parentheses: a selection set.
    let mut parens = 0usize;
    let mut braces = 0usize;
    // The previous token was a name in a selection set: a `:` after it makes it an alias.
    let mut selection_name = false;
    // The previous token was the `$` of a variable: the name after it is not a field.
    let mut after_dollar = false;
    while i < bytes.len() {
        let byte = bytes[i];
        let mut is_selection_name = false;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            // A byte order mark is ignored like white space.
            0xEF if bytes[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                i += 3;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' => i = skip_string(bytes, i),
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'@' => {
                counts.directives += 1;
                if over(limits.max_directives, counts.directives) {
                    return Err(TextRefusal::new(
                        "DIRECTIVE_LIMIT_EXCEEDED",
                        format!(
                            "The document has more than {} directives.",
                            limits.max_directives
                        ),
                        limits.max_directives,
                    ));
                }
                i += 1;
            }
            b'(' => {
                parens += 1;
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                i += 1;
            }
            b'{' => {
                braces += 1;
                i += 1;
            }
            b'}' => {
                braces = braces.saturating_sub(1);
                i += 1;
            }
            b':' => {
                if selection_name {
                    counts.aliases += 1;
                    if over(limits.max_aliases, counts.aliases) {
                        return Err(TextRefusal::new(
                            "MAX_ALIASES_EXCEEDED",
                            format!(
                                "The document uses more than {} aliases.",
                                limits.max_aliases
                            ),
                            limits.max_aliases,
                        ));
                    }
                }
                i += 1;
            }
            b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                i += bytes[i..]
                    .iter()
                    .position(|&b| !NAME_CONTINUE[usize::from(b)])
                    .unwrap_or(bytes.len() - i);
                is_selection_name = parens == 0 && braces > 0 && !after_dollar;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            // Every other punctuator (`! $ & = [ ] |`) and anything the parser will refuse:
            // one token per character.
            _ => {
                i += query[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        selection_name = is_selection_name;
        after_dollar = byte == b'$';
        counts.tokens += 1;
        if over(limits.max_tokens, counts.tokens) {
            return Err(TextRefusal::new(
                "TOKEN_LIMIT_EXCEEDED",
                format!("The document has more than {} tokens.", limits.max_tokens),
                limits.max_tokens,
            ));
        }
    }
    Ok(counts)
}

/// The bytes that continue a name (`[_0-9A-Za-z]`), as a table: the lexer spends most of its
/// time inside names.
const NAME_CONTINUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b == b'_' || b.is_ascii_alphanumeric();
        byte += 1;
    }
    table
};

/// The index after the string starting at `start` (a `"…"` or a `"""…"""` block string), or
/// the end of the text when it is not closed.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A line break ends an unterminated string: the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(query: &str) -> TextCounts {
        check(
            query,
            &TextLimits {
                max_tokens: 0,
                max_directives: 0,
                max_aliases: 0,
            },
        )
        .expect("no limits")
    }

    #[test]
    fn the_lexer_counts_tokens_directives_and_aliases() {
        assert_eq!(
            counts(
                "query Q($id: ID! = \"a, b\") { a: x(id: $id, o: {k: 1}) @skip(if: false) ...F }"
            ),
            TextCounts {
                // query Q ( $ id : ID ! = "…" ) { a : x ( id : $ id o : { k : 1 } ) @ skip ( if : false ) ... F }
                tokens: 38,
                directives: 1,
                aliases: 1,
            }
        );
        // Comments, commas and white space are not tokens; block strings are one.
        assert_eq!(
            counts("# a comment\n{ x , y \"\"\"a \\\"\"\" b\"\"\" }").tokens,
            5
        );
        assert_eq!(counts("{ a: x b: y c: z { d: w } }").aliases, 4);
        assert_eq!(counts("{ x(a: 1, b: [1, 2]) }").aliases, 0);
    }

    #[test]
    fn the_lexer_stops_at_the_first_count_over_a_limit() {
        let limits = TextLimits {
            max_tokens: 5_000,
            max_directives: 50,
            max_aliases: 64,
        };
        let directives = format!("{{ x {} }}", "@unknown ".repeat(5_000));
        let refused = check(&directives, &limits).expect_err("refused");
        assert_eq!(refused.code, "DIRECTIVE_LIMIT_EXCEEDED");
        assert_eq!(refused.limit, 50);
        let tokens = format!("{{ {} }}", "x ".repeat(100_000));
        assert_eq!(
            check(&tokens, &limits).expect_err("refused").code,
            "TOKEN_LIMIT_EXCEEDED"
        );
        let aliases: String = (0..65).map(|i| format!("a{i}: x ")).collect();
        assert_eq!(
            check(&format!("{{ {aliases} }}"), &limits)
                .expect_err("refused")
                .code,
            "MAX_ALIASES_EXCEEDED"
        );
        // Unterminated strings and stray bytes end the pass; the parser reports them.
        assert!(check("{ x(a: \"unterminated", &limits).is_ok());
        assert!(check("{ é ☃ }", &limits).is_ok());
    }
}
