//! Checks on text that people read back (names, e-mail addresses, references), the same in
//! every service. Control characters, bidirectional overrides and zero-width characters are
//! refused, because they make a value display as something else ("evil\u{202E}gro.elpmaxe"
//! shows as a harmless address on a dashboard) or two different values display the same.
//! Each service wraps these in its own domain types and errors; the messages name the field.

/// Characters that change how the text around them is displayed without being visible:
/// bidirectional embeddings, overrides, isolates and marks, and zero-width characters.
pub fn is_invisible_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                      // Arabic letter mark
            | '\u{200B}'..='\u{200F}'  // zero-width space, (non-)joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}'  // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'                // word joiner
            | '\u{2066}'..='\u{2069}'  // LRI, RLI, FSI, PDI
            | '\u{FEFF}' // zero-width no-break space (BOM)
    )
}

/// Refuses control characters and invisible formatting in `value`.
pub fn check_displayable(field: &str, value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    if let Some(c) = value.chars().find(|c| is_invisible_formatting(*c)) {
        return Err(format!(
            "{field} must not contain invisible formatting characters (found U+{:04X}): \
             bidirectional overrides and zero-width characters make text display as something else",
            u32::from(c)
        ));
    }
    Ok(())
}

/// `value` trimmed: not empty, at most `max` characters, nothing invisible.
pub fn bounded_text<'v>(field: &str, value: &'v str, max: usize) -> Result<&'v str, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(format!("{field} must be at most {max} characters"));
    }
    check_displayable(field, trimmed)?;
    Ok(trimmed)
}

/// The longest e-mail address accepted (RFC 5321's path limit less the angle brackets).
pub const EMAIL_ADDRESS_MAX: usize = 254;

/// `value` trimmed, if it is an e-mail address: the syntax of RFC 5321/5322 as the
/// `email_address` crate checks it, narrowed to what mail can be sent to and a person can
/// read: a domain with a dot (no bare hosts, no `[192.0.2.1]` literals), no display name
/// (`Ada <ada@…>`), no quoted local part, and nothing invisible. Ticketing and the CRM apply
/// the same rule, so an address the CRM accepts is never refused when it books tickets with it.
pub fn email_address<'v>(field: &str, value: &'v str) -> Result<&'v str, String> {
    let value = value.trim();
    if value.len() > EMAIL_ADDRESS_MAX {
        return Err(format!(
            "{field} must be at most {EMAIL_ADDRESS_MAX} characters"
        ));
    }
    check_displayable(field, value)?;
    let bad = || format!("{field} {value:?} is not a valid e-mail address");
    if value.contains('"') {
        return Err(bad());
    }
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    let parsed =
        email_address::EmailAddress::parse_with_options(value, options).map_err(|_| bad())?;
    // The library accepts a display form only when asked to; this keeps it that way.
    if parsed.email() != value {
        return Err(bad());
    }
    Ok(value)
}
